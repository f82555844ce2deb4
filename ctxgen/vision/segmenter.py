"""Segmenter role: SAM 2.1 box prompts through ctxgen's own SAM code (`ctxgen.models.sam`), or `reference`.

Every box is one prompt of a single forward pass (as transformers' Sam2Processor batches them); the
low-resolution logits are resized straight to the image and thresholded at 0, with no clean-up (E1, E3).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ctxgen.models import sam_processing as sg
from ctxgen.vision.loading import model_source
from ctxgen.vision.registry import REFERENCE, TINY


class SamSegmenter:
    """SAM 2.1: `segment(rgb, boxes, multimask)` -> (N, H, W) bool masks and their predicted IoU."""

    def __init__(self, model: Any, ident: str):
        self.model, self.ident = model, ident

    def segment(self, rgb: np.ndarray, boxes: np.ndarray, multimask: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """One mask per box; `multimask` picks the best of three by predicted IoU (COCO-MIG), else the single one."""
        import torch

        h, w = rgb.shape[:2]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, h, w), dtype=bool), np.zeros(0)
        size = int(self.model.config.prompt_encoder_config.image_size)
        param = next(self.model.parameters())
        pixels = torch.from_numpy(sg.model_input(rgb, size))[None]  # (1, 3, S, S)
        prompts = torch.tensor([[sg.scale_prompt(b, w, h, size) for b in boxes]], dtype=torch.float32)  # (1, N, 4)
        with torch.inference_mode():
            out = self.model(pixel_values=pixels.to(param.device, param.dtype), input_boxes=prompts.to(param.device),
                             multimask_output=multimask)
        logits = out.pred_masks[0].float().cpu().numpy()  # (N, K, s, s)
        iou = out.iou_scores[0].float().cpu().numpy()  # (N, K)
        pick = iou.argmax(axis=1) if multimask else np.zeros(len(boxes), dtype=np.int64)
        masks = np.stack([sg.upsample_logits(logits[i, k], h, w) > 0.0 for i, k in enumerate(pick)])
        return masks, iou[np.arange(len(boxes)), pick].astype(np.float64)


class FullBoxSegmenter:
    """The exact stand-in: the mask is the whole box (the pixels it covers), predicted IoU 1."""

    ident = REFERENCE

    def segment(self, rgb: np.ndarray, boxes: np.ndarray, multimask: bool = False) -> tuple[np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        masks = np.zeros((len(boxes), h, w), dtype=bool)
        for i, box in enumerate(boxes):
            c1, r1, c2, r2 = sg.box_pixels(tuple(box), w, h)
            masks[i, r1:r2, c1:c2] = True
        return masks, np.ones(len(boxes))


def load_segmenter(value: str, device: str, hub: bool) -> SamSegmenter | FullBoxSegmenter:
    """`reference`, `tiny-random`, a SAM name, hub id or folder -> a segmenter (ctxgen.models.sam loads it)."""
    if value == REFERENCE:
        return FullBoxSegmenter()
    from ctxgen.models.sam import RANDOM_SAM, SAM_MODELS, load_sam

    if value == TINY:
        return SamSegmenter(load_sam(RANDOM_SAM, device), TINY)
    source = model_source("segmenter", SAM_MODELS.get(value, value), hub)
    return SamSegmenter(load_sam(str(source.folder), device), source.ident)
