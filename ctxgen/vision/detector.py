"""Detector role: Grounding DINO through transformers (E1, E3); `reference` returns the ground-truth boxes.

`detect` keeps the detector's *query order* (two-stage proposals sorted by encoder score, which transformers'
post-processing preserves): the "first box" of LAMICBench++ is `boxes[0]`, not the highest final score.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctxgen.vision.loading import Source, load_pretrained, model_source, pil_processor
from ctxgen.vision.registry import REFERENCE, TINY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detections:
    """Boxes (N, 4) xyxy in image pixels, scores (N,), text labels; in the detector's query order."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.boxes)


def caption(phrases: str | Sequence[str]) -> str:
    """One phrase -> `phrase.lower() + "."` (E3); several -> joined with ". " (GroundingDINO's class prompt)."""
    if isinstance(phrases, str):
        return phrases.lower() + "."
    return ". ".join(p.lower() for p in phrases) + "."


class GroundingDetector:
    """Grounding DINO: one image and its text per call; thresholds on the max token score and per token."""

    def __init__(self, model: Any, processor: Any, ident: str):
        self.model, self.processor, self.ident = model, processor, ident

    def detect(self, image: Any, phrases: str | Sequence[str], box_threshold: float = 0.35,
               text_threshold: float = 0.25, expected: np.ndarray | None = None) -> Detections:
        """Boxes above `box_threshold` in query order (E3); `expected` is ignored (it feeds `reference`)."""
        import torch

        param = next(self.model.parameters())
        inputs = self.processor(images=image, text=caption(phrases), return_tensors="pt")
        inputs = {k: v.to(param.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(param.dtype)
        with torch.inference_mode():
            out = self.model(**inputs)
        res = self.processor.post_process_grounded_object_detection(
            out, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold,
            target_sizes=[(image.height, image.width)])[0]
        labels = res["text_labels"] if "text_labels" in res else res.get("labels", [])
        return Detections(res["boxes"].float().cpu().numpy().astype(np.float64).reshape(-1, 4),
                          res["scores"].float().cpu().numpy().astype(np.float64), tuple(str(t) for t in labels))


class ReferenceDetector:
    """The exact stand-in: returns the ground-truth box it is given, score 1 (an upper bound on detection)."""

    ident = REFERENCE

    def detect(self, image: Any, phrases: str | Sequence[str], box_threshold: float = 0.35,
               text_threshold: float = 0.25, expected: np.ndarray | None = None) -> Detections:
        if expected is None:
            return Detections(np.zeros((0, 4)), np.zeros(0), ())
        boxes = np.asarray(expected, dtype=np.float64).reshape(-1, 4)
        label = phrases if isinstance(phrases, str) else " ".join(phrases)
        return Detections(boxes, np.ones(len(boxes)), (label,) * len(boxes))


def load_detector(value: str, device: str, hub: bool) -> GroundingDetector | ReferenceDetector:
    """`reference`, `tiny-random`, a hub id or a folder (safetensors) -> a detector on `device`."""
    if value == REFERENCE:
        return ReferenceDetector()
    if value == TINY:
        from ctxgen.vision.tiny import grounding_dino

        model, processor = grounding_dino()
        return GroundingDetector(model.to(device), processor, TINY)
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    source: Source = model_source("detector", value, hub)
    model = load_pretrained(AutoModelForZeroShotObjectDetection, source).to(device).eval()
    return GroundingDetector(model, pil_processor(AutoProcessor, source), source.ident)
