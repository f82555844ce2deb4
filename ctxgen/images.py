"""Safe image reading: decoded-pixel cap, EXIF orientation, mode conversion, masks (R2). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RefImage:
    """A reference as read from disk, after R2: stored RGB colours and an L mask."""

    index: int
    rgb: np.ndarray  # uint8 (h, w, 3), stored colours (not premultiplied)
    mask: np.ndarray  # uint8 (h, w), 0..255 (alpha, mask file, or automatic segmentation)
