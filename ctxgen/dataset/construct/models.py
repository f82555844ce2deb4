"""The models of each stage, by preset, hub id or folder, or `tiny` (built from configs); loaded once per worker.

Generators are diffusers pipelines used through their `__call__` (dataset tools, not ContextGen inference):
`FluxPipeline` (FLUX.1-dev, optionally with a safetensors LoRA fused, e.g. the turbo LoRA of D3) for t2i and
references, `FluxKontextPipeline` (FLUX.1-Kontext-dev, loaded by `ctxgen.models.loading.load_base`) for repaint
and compose. Detector, segmenter, embedder and face are the `ctxgen.vision` roles. Safetensors only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ctxgen.core.errors import ModelError
from ctxgen.core.hub import is_hub_id
from ctxgen.dataset.construct.config import TINY
from ctxgen.vision.registry import TINY as VISION_TINY

log = logging.getLogger(__name__)
PRESETS = {
    "FLUX.1-dev": "black-forest-labs/FLUX.1-dev",
    "FLUX.1-Kontext-dev": "black-forest-labs/FLUX.1-Kontext-dev",
    "grounding-dino-tiny": "IDEA-Research/grounding-dino-tiny",
    "grounding-dino-base": "IDEA-Research/grounding-dino-base",
    "sam2.1-hiera-large": "facebook/sam2.1-hiera-large",
    "dinov2-giant": "facebook/dinov2-giant",
    "dinov2-base": "facebook/dinov2-base",
}
STAGE_ROLES = {  # which roles each stage loads (and whose ids enter its keys)
    "prompts": (), "crop": (), "filter": (),
    "t2i": ("t2i", "t2i_lora"), "detect": ("detector",), "repaint": ("editor", "detector"),
    "segment": ("segmenter",), "references": ("t2i", "t2i_lora", "detector", "segmenter"),
    "compose": ("editor",), "match": ("detector", "segmenter", "embedder", "face"),
}


def resolve(value: str | None) -> str | None:
    """A preset name -> its hub id; anything else as given."""
    return None if value is None else PRESETS.get(value, value)


def ident(value: str | None) -> str | None:
    """What identifies a model in keys: `tiny`, the hub id, or the absolute folder."""
    value = resolve(value)
    if value is None or value == TINY or value.lower() == "none":
        return value
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() or not is_hub_id(value) else value


def stage_idents(models: Any, stage: str) -> dict[str, str | None]:
    return {role: ident(getattr(models, role)) for role in STAGE_ROLES[stage]}


def _dtype(name: str, device: str) -> Any:
    from ctxgen.models.loading import resolve_device, resolve_dtype

    return resolve_dtype(name, resolve_device(device))


def load_generator(value: str, lora: str | None, device: str, dtype: str) -> Any:
    """FluxPipeline: `tiny` (built from configs) or a diffusers folder / hub id (safetensors only), LoRA fused."""
    from diffusers import FluxPipeline

    torch_dtype = _dtype(dtype, device)
    value = resolve(value)
    if value == TINY:
        from ctxgen.models.tiny import build_tiny_components

        pipe = FluxPipeline(**build_tiny_components())
    else:
        pipe = _from_pretrained(FluxPipeline, value, torch_dtype)
    if lora and lora.lower() != "none" and value != TINY:
        from ctxgen.models.adapter import resolve_adapter_file

        path = resolve_adapter_file(resolve(lora))
        try:
            pipe.load_lora_weights(str(path.parent), weight_name=path.name)
            pipe.fuse_lora()
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"t2i_lora {path}: cannot load it into {value} ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from exc
    pipe.to(device=device, dtype=torch_dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _from_pretrained(cls: Any, value: str, torch_dtype: Any) -> Any:
    from ctxgen.models.loading import missing_base_files
    from ctxgen.models.safety import refuse_pickled_hub_indexes, refuse_pickled_indexes

    path = Path(value).expanduser()
    if path.is_dir():
        refuse_pickled_indexes(path, "t2i folder")
        missing = missing_base_files(path)
        if missing:
            raise ModelError(f"t2i folder {path} is incomplete: missing {', '.join(missing[:4])}; download the "
                             "model again in the diffusers layout")
    elif is_hub_id(value):
        refuse_pickled_hub_indexes(value, "t2i")
    else:
        raise ModelError(f"models.t2i: {value!r} is neither a folder nor a hub id (owner/name) nor a preset "
                         f"({', '.join(p for p in PRESETS if p.startswith('FLUX'))}) nor tiny")
    try:
        return cls.from_pretrained(str(path) if path.is_dir() else value, use_safetensors=True,
                                   torch_dtype=torch_dtype)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load {value} as {cls.__name__} ({first[:200]}); accept the model's licence on "
                         f"the hub and `hf download {value}`, or give a local folder") from None


def load_editor(value: str, device: str, dtype: str) -> Any:
    """FluxKontextPipeline through ctxgen's own base loader (tiny, folder or hub id; safetensors only)."""
    from ctxgen.models.loading import load_base
    from ctxgen.models.registry import TINY as BASE_TINY

    torch_dtype = _dtype(dtype, device)
    value = resolve(value)
    pipe = load_base(BASE_TINY if value == TINY else value, torch_dtype)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _vision(value: str | None) -> str | None:
    value = resolve(value)
    return VISION_TINY if value == TINY else value


class StageModels:
    """The models one stage uses on one device, each loaded the first time it is asked for (once per worker)."""

    def __init__(self, models: Any, device: str, dtype: str):
        self.models, self.device, self.dtype = models, device, dtype
        self._loaded: dict[str, Any] = {}

    def get(self, role: str) -> Any:
        if role not in self._loaded:
            log.info("loading %s: %s on %s", role, getattr(self.models, role), self.device)
            self._loaded[role] = self._load(role)
        return self._loaded[role]

    def _load(self, role: str) -> Any:
        m = self.models
        if role == "t2i":
            return load_generator(m.t2i, m.t2i_lora, self.device, self.dtype)
        if role == "editor":
            return load_editor(m.editor, self.device, self.dtype)
        if role == "detector":
            from ctxgen.vision.detector import load_detector

            return load_detector(_vision(m.detector), self.device, True)
        if role == "segmenter":
            from ctxgen.vision.segmenter import load_segmenter

            return load_segmenter(_vision(m.segmenter), self.device, True)
        if role == "embedder":
            from ctxgen.vision.embedder import load_embedder

            return load_embedder(_vision(m.embedder), self.device, True)
        if role == "face":
            if m.face is None:
                return None
            from ctxgen.dataset.construct.faces import load_faces

            return load_faces(_vision(m.face), self.device)
        raise ModelError(f"unknown model role {role!r}")
