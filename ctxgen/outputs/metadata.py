"""Stage 6: the idempotency key, PNG metadata and sidecars, written atomically."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctxgen import __version__
from ctxgen.core.fsio import png_bytes, sha256_file, write_bytes
from ctxgen.outputs.commit import KEY_CHUNK, set_done
from ctxgen.core.options import RenderOptions
from ctxgen.models.registry import ModelIdentity
from ctxgen.scene.model import Scene

META_KEY = "ctxgen"  # PNG tEXt chunk holding the JSON metadata


@dataclass(frozen=True)
class RenderSettings:
    """Everything that changes pixels, resolved for one scene: part of every output's key and metadata.

    The run's RenderOptions with the scene's steps/guidance filled in, the resolved attention kernel, and the
    ModelIdentity (device included; the key leaves the device out). `options()` rebuilds the RenderOptions.
    """

    steps: int
    guidance: float
    text_len: int
    base: str
    adapter: str | None
    adapter_sha256: str | None
    fused: bool
    dtype: str
    device: str
    memory: str = "full"  # the low tier quantises weights: other pixels
    attention: str = "sdpa"  # flex and sdpa agree to ~1e-7, which can flip a rounding

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def resolve(cls, options: RenderOptions, identity: ModelIdentity, scene: Scene, attention: str) -> RenderSettings:
        """Fill the scene's steps and guidance where the run gave none; `attention` is the resolved kernel."""
        return cls(
            steps=options.steps or scene.steps,
            guidance=options.guidance if options.guidance is not None else scene.guidance,
            text_len=options.text_len, base=identity.base, adapter=identity.adapter,
            adapter_sha256=identity.adapter_sha256, fused=identity.fused, dtype=identity.dtype,
            device=identity.device, memory=options.memory, attention=attention,
        )

    def options(self) -> RenderOptions:
        """The RenderOptions that render these exact settings again (steps, guidance and kernel explicit)."""
        return RenderOptions(steps=self.steps, guidance=self.guidance, text_len=self.text_len, dtype=self.dtype,
                             memory=self.memory, attention=self.attention, fuse=self.fused or self.adapter is None)


def scene_files(scene: Scene) -> dict[str, str]:
    """sha256 of every file a scene reads (references, masks, layout), keyed by absolute path."""
    paths: list[Path] = [inst.image for inst in scene.instances]
    paths += [inst.mask for inst in scene.instances if inst.mask is not None]
    if scene.layout is not None:
        paths.append(scene.layout)
    return {str(p): sha256_file(p) for p in sorted(set(paths))}


def output_key(scene: Scene, files: dict[str, str], seed: int, settings: RenderSettings) -> str:
    """Hash of scene content, referenced bytes, seed, render options and model ids (resume and skip)."""
    doc = {"scene": scene.digest, "files": sorted(files.values()), "seed": seed, "settings": settings.as_dict()}
    doc["settings"].pop("device", None)  # same key on any device of the same dtype
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def read_metadata(png: Path) -> dict[str, Any] | None:
    """The JSON metadata of a ctxgen PNG, or None when absent, unreadable or not a JSON object (untrusted input)."""
    from PIL import Image

    try:
        with Image.open(png) as im:
            text = getattr(im, "text", {}).get(META_KEY)
        meta = json.loads(text) if isinstance(text, str) and text else None
    except (OSError, ValueError, SyntaxError, RecursionError):
        return None
    return meta if isinstance(meta, dict) else None


def is_done(png: Path, key: str, overlay_names: list[str] | None = None) -> bool:
    """True when the seed's whole output set carries this exact key: the image, its sidecar and (when given) the
    named debug overlays, so a re-run may skip it (see `ctxgen.outputs.commit`)."""
    meta = read_metadata(png) if png.is_file() else None
    image_key = meta.get("key") if meta else None
    return isinstance(image_key, str) and set_done(png, key, image_key, overlay_names)


def build_metadata(scene: Scene, files: dict[str, str], seed: int, settings: RenderSettings, key: str,
                   extra: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to reproduce the image: scene text, seed, options, model ids, file hashes, version."""
    return {
        "ctxgen": __version__, "key": key, "seed": seed,
        "scene_file": str(scene.source), "scene_sha256": scene.digest,
        "scene_yaml": scene.text,
        "prompt": scene.prompt, "size": list(scene.size), "files": files,
        "settings": settings.as_dict(), **extra,
    }


def encode_image(image: np.ndarray, meta: dict[str, Any]) -> bytes:
    """An RGB uint8 image as PNG bytes with its metadata in a tEXt chunk."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(META_KEY, json.dumps(meta, sort_keys=True, allow_nan=False))
    info.add_text("prompt", meta.get("prompt", ""))
    info.add_text("seed", str(meta.get("seed", "")))
    return png_bytes(Image.fromarray(image, "RGB"), pnginfo=info)


def encode_sidecar(meta: dict[str, Any]) -> bytes:
    """The JSON sidecar beside an image (same content as the PNG chunk, minus the scene text)."""
    doc = {k: v for k, v in meta.items() if k != "scene_yaml"}
    return (json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def encode_overlay(image: Any, key: str) -> bytes:
    """A debug overlay (PIL image) as PNG bytes carrying the render's key."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(KEY_CHUNK, key)
    return png_bytes(image, pnginfo=info)


def write_image(path: Path, image: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write an RGB uint8 image as PNG with its metadata, atomically (a lone file; renders use `commit`)."""
    return write_bytes(path, encode_image(image, meta))
