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


def text_width(face, text: str) -> int:
    """Width in pixels of `text` drawn in `face`."""
    left, _, right, _ = face.getbbox(text)
    return int(right - left)


def line_height(face) -> int:
    """A line's height in pixels for `face` (ascent + descent + 2 px leading)."""
    try:
        ascent, descent = face.getmetrics()
    except AttributeError:  # bitmap font
        return int(face.getbbox("Ag")[3]) + 2
    return int(ascent + descent) + 2


def wrap(text: str, face, width: int) -> list[str]:
    """Greedy word wrap of `text` to lines no wider than `width` px (a single over-long word keeps its line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_width(face, f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def outline_cells(draw, mask: np.ndarray, cell: float, colour: tuple, width: int = 1,
                  origin: tuple[int, int] = (0, 0)) -> None:
    """Draw the outline of the True cells of a (rows, cols) grid with `cell` px cells, top-left at `origin`;
    lines on the picture's edge are moved just inside it, so they stay visible."""
    padded = np.pad(mask, 1)  # (rows + 2, cols + 2) bool
    (ox, oy), (size_w, size_h), half = origin, draw.im.size, width // 2

    def x(k: int) -> int:
        return min(max(ox + int(round(k * cell)), half), size_w - 1 - half)

    def y(k: int) -> int:
        return min(max(oy + int(round(k * cell)), half), size_h - 1 - half)

    sides = (  # (cells with background across this side, that side's segment for the cell at row r, column c)
        (mask & ~padded[:-2, 1:-1], lambda r, c: (x(c), y(r), x(c + 1), y(r))),
        (mask & ~padded[2:, 1:-1], lambda r, c: (x(c), y(r + 1), x(c + 1), y(r + 1))),
        (mask & ~padded[1:-1, :-2], lambda r, c: (x(c), y(r), x(c), y(r + 1))),
        (mask & ~padded[1:-1, 2:], lambda r, c: (x(c + 1), y(r), x(c + 1), y(r + 1))),
    )
    for edges, segment in sides:
        for r, c in np.argwhere(edges):
            x0, y0, x1, y1 = segment(r, c)
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=width)
