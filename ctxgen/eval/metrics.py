"""Pure per-instance formulas of the three benchmarks (E1-E3), torch-free and in the published units.

OpenCV's 8-bit conventions are reproduced bit for bit in numpy, so no OpenCV is needed: `bgr_to_hsv`
(H 0..180, S and V 0..255, the fixed-point tables of `cvtColor(COLOR_BGR2HSV)`), `resize_nearest`
(`INTER_NEAREST`, shared with dataset construction in `ctxgen.vision.features`) and `resize_linear`
(`INTER_LINEAR` on uint8 with 11-bit weights and the vector path's rounding; a few pixels in a thousand
may still differ by 1 from OpenCV's own output).
"""

from __future__ import annotations

import math

import numpy as np

from ctxgen.vision.features import cosine, masked_mean, resize_nearest

__all__ = ["COLOUR_RANGES", "LEGACY_COLOUR_RANGES", "MIG_GREY", "bgr_to_hsv", "colour_fraction", "cosine",
           "finite_or_zero", "in_range", "masked_mean", "parse_itc", "parse_yes_anywhere", "resize_linear", "resize_nearest"]

Range = tuple[tuple[int, int, int], tuple[int, int, int]]
# COCO-MIG's active colour table (eval_mig.py): OpenCV HSV, inclusive bounds; red wraps around H = 0.
COLOUR_RANGES: dict[str, tuple[Range, ...]] = {
    "red": (((0, 50, 70), (9, 255, 255)), ((159, 50, 70), (180, 255, 255))),
    "blue": (((90, 50, 70), (128, 255, 255)),),
    "yellow": (((25, 50, 70), (35, 255, 255)),),
    "green": (((36, 50, 70), (89, 255, 255)),),
    "black": (((0, 0, 0), (180, 255, 30)),),
    "white": (((0, 0, 221), (180, 43, 255)),),
    "brown": (((6, 43, 35), (25, 255, 255)),),
}
# The table left commented out in eval_mig.py (and quoted in E1): offered as `colours: legacy`.
LEGACY_COLOUR_RANGES: dict[str, tuple[Range, ...]] = {
    "red": (((0, 43, 35), (6, 255, 255)), ((156, 43, 35), (180, 255, 255))),
    "blue": (((78, 43, 35), (124, 255, 255)),),
    "green": (((35, 43, 35), (77, 255, 255)),),
    "yellow": (((20, 43, 35), (34, 255, 255)),),
    "black": (((0, 0, 0), (180, 255, 35)),),
    "white": (((0, 0, 221), (180, 43, 255)),),
    "brown": (((6, 43, 35), (25, 255, 255)),),
}
MIG_GREY = 127  # the background value outside the SAM mask before the HSV test (E1)
_SHIFT = 12
_RESIZE_BITS = 11


def _table(scale: int, div: float, n: int = 256) -> np.ndarray:
    """OpenCV's `saturate_cast<int>((scale << 12) / (div * i))` tables, entry 0 = 0."""
    i = np.arange(n, dtype=np.float64)
    with np.errstate(divide="ignore"):
        t = np.rint(np.where(i > 0, (scale << _SHIFT) / (div * np.maximum(i, 1)), 0.0))
    return t.astype(np.int64)


_SDIV = _table(255, 1.0)
_HDIV = _table(180, 6.0)


def bgr_to_hsv(bgr: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) BGR -> uint8 HSV in OpenCV units, as `cv2.cvtColor(x, cv2.COLOR_BGR2HSV)` (E1)."""
    x = np.asarray(bgr, dtype=np.int64)
    b, g, r = x[..., 0], x[..., 1], x[..., 2]
    v = np.maximum(np.maximum(b, g), r)
    diff = v - np.minimum(np.minimum(b, g), r)
    s = (diff * _SDIV[v] + (1 << (_SHIFT - 1))) >> _SHIFT
    h = np.where(v == r, g - b, np.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * _HDIV[diff] + (1 << (_SHIFT - 1))) >> _SHIFT
    h = np.where(h < 0, h + 180, h)
    return np.stack([h, s, v], axis=-1).astype(np.uint8)  # (..., 3)


def in_range(hsv: np.ndarray, ranges: tuple[Range, ...]) -> np.ndarray:
    """Pixels inside any of the inclusive (lower, upper) ranges on all three channels (`cv2.inRange`, OR-ed)."""
    out = np.zeros(hsv.shape[:-1], dtype=bool)
    for lower, upper in ranges:
        out |= np.all((hsv >= np.asarray(lower)) & (hsv <= np.asarray(upper)), axis=-1)
    return out


def colour_fraction(bgr: np.ndarray, mask: np.ndarray, ranges: tuple[Range, ...]) -> float:
    """Share of mask pixels whose colour is in range, after greying the rest to 127 (E1); 0 for an empty mask."""
    m = np.asarray(mask, dtype=bool)
    n = int(m.sum())
    if n == 0:
        return 0.0
    img = np.where(m[..., None], np.asarray(bgr, dtype=np.uint8), np.uint8(MIG_GREY))  # (H, W, 3)
    hits = in_range(bgr_to_hsv(img), ranges) & m
    return float(hits.sum()) / n


def _linear_taps(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source index pairs and 11-bit weights of OpenCV's bilinear resize along one axis."""
    scale = n_src / n_dst
    f = ((np.arange(n_dst) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.int64)
    frac = f - i0
    frac = np.where(i0 < 0, 0.0, frac)
    i0 = np.maximum(i0, 0)
    frac = np.where(i0 >= n_src - 1, 0.0, frac)
    i0 = np.minimum(i0, n_src - 1)
    w1 = np.rint(frac.astype(np.float32) * (1 << _RESIZE_BITS)).astype(np.int64)
    return i0, np.minimum(i0 + 1, n_src - 1), w1


def resize_linear(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 (h, w[, c]) -> (height, width[, c]) as `cv2.resize(..., INTER_LINEAR)` in fixed point (E1)."""
    src = np.asarray(img, dtype=np.int64)
    x0, x1, wx = _linear_taps(src.shape[1], width)
    y0, y1, wy = _linear_taps(src.shape[0], height)
    one = 1 << _RESIZE_BITS
    extra = (slice(None),) + (None,) * (src.ndim - 2)
    rows = src[:, x0] * (one - wx)[extra] + src[:, x1] * wx[extra]  # (h, width[, c]) scaled by 2^11
    col = (slice(None),) + (None,) * (src.ndim - 1)
    b0, b1 = (one - wy)[col], wy[col]
    out = (((b0 * (rows[y0] >> 4)) >> 16) + ((b1 * (rows[y1] >> 4)) >> 16) + 2) >> 2  # OpenCV's SIMD rounding
    return np.clip(out, 0, 255).astype(np.uint8)


def parse_itc(answer: str) -> float:
    """LAMICBench++ ITC: the lower-cased, stripped answer starts with "yes" -> 1, anything else -> 0 (E3)."""
    return 1.0 if answer.strip().lower().startswith("yes") else 0.0


def parse_yes_anywhere(answer: str) -> float:
    """LayoutSAM-Eval: "Yes" or "yes" anywhere in the answer -> 1, else 0 (E2)."""
    return 1.0 if ("Yes" in answer or "yes" in answer) else 0.0


def finite_or_zero(x: float) -> tuple[float, bool]:
    """(x, False) for a finite number, (0.0, True) for NaN/inf: the published "NaN scores 0" rule (E3)."""
    return (float(x), False) if math.isfinite(x) else (0.0, True)
