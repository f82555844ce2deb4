"""What every picture ctxgen draws shares: the instance palette, the font, pixel conversion. Torch-free."""

from __future__ import annotations

import numpy as np
from PIL import ImageFont

PALETTE = (  # distinct, saturated colours (RGB), cycled per instance
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40), (128, 0, 0), (0, 0, 128),
)
BG = (24, 26, 30)  # panel background
FG = (235, 235, 235)  # caption text


def instance_colour(index: int) -> tuple[int, int, int]:
    """The palette colour of instance `index`."""
    return PALETTE[index % len(PALETTE)]


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's default font at a pixel size (scalable since Pillow 10.1, bitmap before)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """float [-1, 1] (..., 3) -> uint8: round((x + 1) * 127.5) half to even, clipped to 0..255."""
    return np.clip(np.round((pixels + 1.0) * 127.5), 0, 255).astype(np.uint8)
