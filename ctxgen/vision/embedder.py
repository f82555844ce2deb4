"""Embedder role: DINOv2 / DINO ViT (patch features, CLS) and CLIP-type models (image and text towers).

Images go through the model's own processor with the PIL backend, so the numbers are those of the slow
processors (E3). `patch_features` is `last_hidden_state[:, 1:]` (DINOv2 IPS); `embed` is the CLS token for
ViT-type models and the projected image embedding for CLIP-type ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ctxgen.vision.loading import Source, load_pretrained, model_source, pil_processor
from ctxgen.vision.registry import TINY


class Embedder:
    """One vision (or CLIP) model with its processor; every method takes PIL images or uint8 arrays."""

    def __init__(self, model: Any, processor: Any, ident: str):
        self.model, self.processor, self.ident = model, processor, ident
        self.is_clip = hasattr(model, "get_image_features") and hasattr(model, "logit_scale")

    def _pixels(self, images: Sequence[Any]) -> Any:
        proc = getattr(self.processor, "image_processor", self.processor)
        param = next(self.model.parameters())
        return proc(images=list(images), return_tensors="pt")["pixel_values"].to(param.device, param.dtype)

    def patch_features(self, image: Any) -> np.ndarray:
        """(P, D) float32 patch tokens (`last_hidden_state[:, 1:]`) of one image (E3)."""
        import torch

        with torch.inference_mode():
            hidden = self.model(pixel_values=self._pixels([image])).last_hidden_state
        return hidden[0, 1:].float().cpu().numpy()  # (P, D)

    def embed(self, images: Sequence[Any]) -> np.ndarray:
        """(N, D) image embeddings: CLIP's projected features, or the CLS token of a ViT-type model (E4)."""
        import torch

        if not images:
            return np.zeros((0, 0), dtype=np.float32)
        with torch.inference_mode():
            if self.is_clip:
                out = self.model.get_image_features(pixel_values=self._pixels(images))
                feats = out if isinstance(out, torch.Tensor) else out.pooler_output
            else:
                feats = self.model(pixel_values=self._pixels(images)).last_hidden_state[:, 0]
        return feats.float().cpu().numpy()  # (N, D)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) projected text embeddings of a CLIP-type model; texts truncated to the context (77)."""
        import torch

        tok = getattr(self.processor, "tokenizer", None)
        if not self.is_clip or tok is None:
            raise TypeError(f"{self.ident} has no text tower")
        param = next(self.model.parameters())
        enc = tok(list(texts), padding=True, truncation=True, max_length=77, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.get_text_features(input_ids=enc["input_ids"].to(param.device),
                                               attention_mask=enc["attention_mask"].to(param.device))
            feats = out if isinstance(out, torch.Tensor) else out.pooler_output
        return feats.float().cpu().numpy()  # (N, D)

    @property
    def logit_scale(self) -> float:
        """exp(logit_scale): 100 for OpenAI CLIP (what `logits_per_image` multiplies the cosine by)."""
        return float(self.model.logit_scale.exp().item())


def _spec(value: str | dict) -> tuple[str, str | None]:
    if isinstance(value, dict):
        return str(value.get("model")), (str(value["processor"]) if value.get("processor") else None)
    return str(value), None


def load_embedder(value: str | dict, device: str, hub: bool, role: str = "embedder", tiny: str = "dinov2") -> Embedder:
    """`tiny-random`, a hub id or folder, or {model:, processor:} (PickScore's processor lives elsewhere)."""
    model_value, proc_value = _spec(value)
    if model_value == TINY:
        from ctxgen.vision import tiny as tiny_models

        model, processor = tiny_models.BUILDERS[tiny]()
        return Embedder(model.to(device), processor, f"{TINY}:{tiny}")
    from transformers import AutoModel, AutoProcessor

    source: Source = model_source(role, model_value, hub)
    proc_source = model_source(role, proc_value, hub) if proc_value else source
    model = load_pretrained(AutoModel, source).to(device).eval()
    try:
        processor = pil_processor(AutoProcessor, proc_source)
    except Exception:  # a vision-only model ships an image processor, not a processor
        from transformers import AutoImageProcessor

        processor = pil_processor(AutoImageProcessor, proc_source)
    return Embedder(model, processor, source.ident + (f"+{proc_source.ident}" if proc_value else ""))
