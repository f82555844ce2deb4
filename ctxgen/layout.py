"""Stage 2: Scene + reference pixels -> the composite layout image and prepared references (R4-R12)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PreparedRef:
    """A reference after R5-R7, ready for the VAE and the token plan."""

    index: int
    pixels: np.ndarray  # float32 (h, w, 3) in [-1, 1], already image*mask (background 0.0), R6
    mask: np.ndarray  # bool (h, w), binarized at >=128 after the R5 resize
    token_mask: np.ndarray  # bool (th, tw) = R7 token mask m_n

    @property
    def size(self) -> tuple[int, int]:  # (w, h) in pixels, multiples of 16
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def grid(self) -> tuple[int, int]:  # (th, tw) tokens
        return self.token_mask.shape


@dataclass(frozen=True)
class LayoutPlan:
    """Everything the token plan and the model need from the layout stage."""

    size: tuple[int, int]  # W, H
    base: int  # R4 reference base size
    image: np.ndarray  # float32 (H, W, 3) in [-1, 1]: the composite layout (R10) or the user layout (R12)
    refs: tuple[PreparedRef, ...]  # scene order
    order: tuple[int, ...]  # instance indices bottom -> top (R11); empty for a user layout
    layer_masks: tuple[np.ndarray, ...]  # bool (H, W) placed mask per instance (scene order); all False for R12
    boxes: tuple[tuple[int, int, int, int], ...]  # pixel boxes after clipping, scene order
    token_boxes: tuple[tuple[int, int, int, int], ...]  # (x1t, y1t, x2t, y2t) end-exclusive, R8
