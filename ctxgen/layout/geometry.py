"""Pure layout geometry: base size, resize dims, boxes, token boxes, R9 placement, bilinear resize (docs/spec.md).

Torch-free.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ctxgen.core.units import TOKEN

logger = logging.getLogger(__name__)

_BASE_TABLE = ((384, 256), (512, 384), (768, 512), (1024, 768))  # (min side <= s, base)

IntBox = tuple[int, int, int, int]  # x1, y1, x2, y2 (end-exclusive)


@dataclass(frozen=True)
class Placement:
    """Where a resized crop goes on the canvas (R9)."""

    size: tuple[int, int]  # (h', w') of the resized crop, each >= 1
    anchor: tuple[int, int]  # (cy, cx): canvas pixel under the crop centre (h'//2, w'//2)


def base_size(W: int, H: int) -> int:
    """R4: reference base size from the shorter canvas side."""
    s = min(W, H)
    for limit, base in _BASE_TABLE:
        if s <= limit:
            return base
    return 1024


def _ceil16(n: float) -> int:
    """Truncate to int, then round up to a multiple of 16 (R5)."""
    return (int(n) + TOKEN - 1) // TOKEN * TOKEN


def resize_dims(w: int, h: int, base: int) -> tuple[int, int]:
    """R5: (new_w, new_h) with area ~ base^2, aspect kept, each a multiple of 16 and >= 16."""
    k = math.sqrt(base * base / (w * h))
    return max(TOKEN, _ceil16(w * k)), max(TOKEN, _ceil16(h * k))


def drawn_box(box: Sequence[float]) -> IntBox:
    """R9: float box -> integer pixel box (floor x1,y1; ceil x2,y2) as drawn, not clipped (it may cross the canvas)."""
    x1, y1, x2, y2 = box
    return math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)


def pixel_box(box: Sequence[float], W: int, H: int) -> IntBox:
    """R8: float box -> integer pixel box (floor x1,y1; ceil x2,y2), clipped to the canvas."""
    x1, y1, x2, y2 = drawn_box(box)
    return min(max(x1, 0), W), min(max(y1, 0), H), min(max(x2, 0), W), min(max(y2, 0), H)


def token_box(box: Sequence[float], W: int, H: int) -> IntBox:
    """R8: (x1t, y1t, x2t, y2t) = floor/ceil of the box over 16, clipped to the token grid; end-exclusive.

    Computed from the integer pixel box: floor(floor(x)/16) = floor(x/16) and likewise for ceil, without
    float rounding at the edges.
    """
    x1, y1, x2, y2 = pixel_box(box, W, H)
    return x1 // TOKEN, y1 // TOKEN, -(-x2 // TOKEN), -(-y2 // TOKEN)


def tight_box(mask: np.ndarray) -> IntBox | None:
    """R9: (x1, y1, x2, y2) of the foreground, x2/y2 the LAST foreground column/row (inclusive); None if empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _axis_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of torch's bilinear (align_corners=False) along one axis, in float32.

    torch (CUDA, and CPU kernels built for AVX2/AVX512) evaluates scale*(i+0.5)-0.5 as one fused
    multiply-add; in float64 that expression is exact, so one rounding to float32 reproduces the FMA.
    """
    scale = np.float32(n_in) / np.float32(n_out)
    src = (np.float64(scale) * (np.arange(n_out) + 0.5) - 0.5).astype(np.float32)  # (n_out,)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam1 = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0))
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, np.float32(1.0) - lam1, lam1


def bilinear_resize(arr: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """R9: torch interpolate(mode="bilinear", align_corners=False, antialias=False) on (h,w) or (h,w,C) float32."""
    src = np.asarray(arr, dtype=np.float32)
    flat = src if src.ndim == 3 else src[:, :, None]  # (h, w, C)
    h0, h1, hl0, hl1 = _axis_taps(flat.shape[0], out_h)
    w0, w1, wl0, wl1 = _axis_taps(flat.shape[1], out_w)
    wl0, wl1 = wl0[None, :, None], wl1[None, :, None]  # (1, out_w, 1)
    top = flat[h0]  # (out_h, w, C)
    bot = flat[h1]  # (out_h, w, C)
    top = top[:, w0] * wl0 + top[:, w1] * wl1  # (out_h, out_w, C)
    bot = bot[:, w0] * wl0 + bot[:, w1] * wl1  # (out_h, out_w, C)
    out = hl0[:, None, None] * top + hl1[:, None, None] * bot  # (out_h, out_w, C)
    return out if src.ndim == 3 else out[:, :, 0]


def _centre(box: IntBox) -> tuple[int, int]:
    """R9 anchor ((y1b+y2b)//2, (x1b+x2b)//2) of an integer box."""
    return (box[1] + box[3]) // 2, (box[0] + box[2]) // 2


def fit_instance(crop_hw: tuple[int, int], box: IntBox) -> Placement:
    """R9 instance-fit: area-matching scale, aspect kept, centred on the box (the published code forms
    bw*bh/(cw*ch) in float32 from int32 box tensors, then takes a float64 sqrt; kept bit-exact)."""
    ch, cw = crop_hw
    bw, bh = box[2] - box[0], box[3] - box[1]
    s = math.sqrt(float(np.float32(bw * bh) / np.float32(cw * ch)))
    return Placement((max(1, int(ch * s)), max(1, int(cw * s))), _centre(box))


def fit_distort(crop_hw: tuple[int, int], box: IntBox) -> Placement:
    """R9 distort: stretched to exactly the box, centred on it."""
    return Placement((max(1, box[3] - box[1]), max(1, box[2] - box[0])), _centre(box))


def fit_contain(crop_hw: tuple[int, int], box: IntBox) -> Placement:
    """R9 contain (a ctxgen addition, not what the adapter was trained on): the largest aspect-kept size inside
    the box, centred on it; integer arithmetic, so neither side ever exceeds the box."""
    ch, cw = crop_hw
    bw, bh = box[2] - box[0], box[3] - box[1]
    if bw * ch <= bh * cw:  # the width binds: bw/cw <= bh/ch
        size = (max(1, ch * bw // cw), max(1, bw))
    else:
        size = (max(1, bh), max(1, cw * bh // ch))
    return Placement(size, _centre(box))


def _edge_ratio(frame_hw, tight, bc, canvas_wh) -> float:
    """R9 image-fit r: smallest positive d_i/o_j over the x pairs and the y pairs (float32), 1.0 if none."""
    (h, w), (x1, y1, x2, y2), (bcy, bcx), (W, H) = frame_hw, tight, bc, canvas_wh
    cx, cy = w // 2, h // 2
    o = (x1 - cx, y1 - cy, x2 - cx, y2 - cy)
    d = (-bcx, -bcy, W - bcx, H - bcy)
    ratios = [
        np.float32(d[i]) / np.float32(o[j])
        for axis in ((0, 2), (1, 3))
        for i in axis
        for j in axis
        if o[j] != 0
    ]
    positive = [r for r in ratios if r > 0]
    return float(min(positive)) if positive else 1.0


def fit_image(frame_hw: tuple[int, int], tight: IntBox, box: IntBox, canvas_wh: tuple[int, int]) -> Placement:
    """R9 image-fit: the whole frame is contain-fitted in the box; the foreground keeps its place in it.

    Arithmetic follows the published code's dtypes (float32 ratios and scale, float64 a, float32 corners).
    """
    h, w = frame_hw
    bcy, bcx = _centre(box)
    r = _edge_ratio(frame_hw, tight, (bcy, bcx), canvas_wh)
    bw, bh = box[2] - box[0], box[3] - box[1]
    s = min(np.float32(bw) / np.float32(w), np.float32(bh) / np.float32(h), np.float32(r))
    new_h = int(np.float32(h) * s)  # float32 product, as int * float32 tensor in the published code
    a = new_h / h
    cx, cy = w // 2, h // 2

    def corner(v: int, c: int, bc: int) -> int:
        return int(np.float32(np.float32((v - c) * a) + np.float32(bc)))

    X1, Y1 = corner(tight[0], cx, bcx), corner(tight[1], cy, bcy)
    X2, Y2 = corner(tight[2], cx, bcx), corner(tight[3], cy, bcy)
    return Placement((max(1, Y2 - Y1), max(1, X2 - X1)), ((Y1 + Y2) // 2, (X1 + X2) // 2))


def place(fit: str, frame_hw: tuple[int, int], tight: IntBox | None, box: IntBox,
          canvas_wh: tuple[int, int], what: str = "reference") -> Placement | None:
    """R9: placement for a fit mode; None (with a warning naming `what`) when the crop [y1:y2, x1:x2] is empty."""
    if tight is None or tight[2] <= tight[0] or tight[3] <= tight[1]:
        logger.warning("%s: foreground box %s gives an empty crop (no foreground, or one pixel wide/high); "
                       "its layer is skipped (R9)", what, tight)
        return None
    crop_hw = (tight[3] - tight[1], tight[2] - tight[0])
    if fit == "instance":
        return fit_instance(crop_hw, box)
    if fit == "distort":
        return fit_distort(crop_hw, box)
    if fit == "image":
        return fit_image(frame_hw, tight, box, canvas_wh)
    if fit == "contain":
        return fit_contain(crop_hw, box)
    raise ValueError(f"unknown fit mode {fit!r}; expected instance, distort, image or contain")


def paste_window(layer_hw: tuple[int, int], anchor: tuple[int, int],
                 canvas_hw: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """R9: (canvas slices, layer slices) putting the layer centre (h'//2, w'//2) on anchor; None if all outside."""
    (lh, lw), (ay, ax), (H, W) = layer_hw, anchor, canvas_hw
    top, left = ay - lh // 2, ax - lw // 2
    cy0, cx0 = max(0, top), max(0, left)
    cy1, cx1 = min(H, top + lh), min(W, left + lw)
    if cy1 <= cy0 or cx1 <= cx0:
        return None
    canvas_sl = (slice(cy0, cy1), slice(cx0, cx1))
    layer_sl = (slice(cy0 - top, cy1 - top), slice(cx0 - left, cx1 - left))
    return canvas_sl, layer_sl


def paste(canvas: np.ndarray, canvas_mask: np.ndarray, layer: np.ndarray, layer_mask: np.ndarray,
          anchor: tuple[int, int]) -> None:
    """R9/R10: hard-mask paste of a layer (in place) with its centre on anchor; outside the canvas is clipped."""
    win = paste_window(layer_mask.shape, anchor, canvas_mask.shape)
    if win is None:
        return
    (cy, cx), (ly, lx) = win
    keep = layer_mask[ly, lx]  # (h, w) bool
    canvas[cy, cx][keep] = layer[ly, lx][keep]
    canvas_mask[cy, cx] |= keep
