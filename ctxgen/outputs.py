"""Stage 6: output naming, the idempotency key, PNG metadata and sidecars, all written atomically."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .fsio import sha256_file, write_bytes, write_json
from .scene import Scene

META_KEY = "ctxgen"  # PNG tEXt chunk holding the JSON metadata


@dataclass(frozen=True)
class RenderSettings:
    """The options that change pixels: part of every output's key."""

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


def image_path(out_dir: Path, seed: int) -> Path:
    return out_dir / f"seed-{seed}.png"


def read_metadata(png: Path) -> dict[str, Any] | None:
    """The JSON metadata of a ctxgen PNG, or None when absent or unreadable."""
    from PIL import Image

    try:
        with Image.open(png) as im:
            text = im.text.get(META_KEY)  # type: ignore[attr-defined]
        return json.loads(text) if text else None
    except (OSError, ValueError, SyntaxError):
        return None


def is_done(png: Path, key: str) -> bool:
    """True when `png` exists and carries this exact key (so a re-run may skip it)."""
    meta = read_metadata(png) if png.is_file() else None
    return bool(meta) and meta.get("key") == key


def build_metadata(scene: Scene, files: dict[str, str], seed: int, settings: RenderSettings, key: str,
                   extra: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to reproduce the image: scene text, seed, options, model ids, file hashes, version."""
    return {
        "ctxgen": __version__, "key": key, "seed": seed,
        "scene_file": str(scene.source), "scene_sha256": scene.digest,
        "scene_yaml": scene.source.read_text(encoding="utf-8"),
        "prompt": scene.prompt, "size": list(scene.size), "files": files,
        "settings": settings.as_dict(), **extra,
    }


def write_image(path: Path, image: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write an RGB uint8 image as PNG with its metadata in a tEXt chunk, atomically."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(META_KEY, json.dumps(meta, sort_keys=True))
    info.add_text("prompt", meta.get("prompt", ""))
    info.add_text("seed", str(meta.get("seed", "")))
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG", pnginfo=info)
    return write_bytes(path, buf.getvalue())


def write_sidecar(path: Path, meta: dict[str, Any]) -> Path:
    """The JSON sidecar beside an image (same content as the PNG chunk, minus the scene text)."""
    return write_json(path.with_suffix(".json"), {k: v for k, v in meta.items() if k != "scene_yaml"})


def save_pil(path: Path, image: Any) -> Path:
    """Save a PIL image atomically as PNG."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return write_bytes(path, buf.getvalue())


def safe_name(stem: str) -> str:
    """A folder name from a file stem: letters, digits, `-_.` only, never hidden, never empty."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).lstrip(".") or "scene"


def scene_out_dirs(scenes: list[Path], root: Path) -> dict[Path, Path]:
    """`root/<name>` per scene file; names shared by several files get a short path hash (never escapes root)."""
    by_name: dict[str, list[Path]] = {}
    for p in scenes:
        by_name.setdefault(safe_name(p.stem), []).append(p)
    out: dict[Path, Path] = {}
    for name, paths in by_name.items():
        for p in paths:
            tag = "" if len(paths) == 1 else "-" + hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:6]
            out[p] = root / f"{name}{tag}"
    return out
