"""SAM 2.1 pre/post-processing for `mask: auto` (R2): resize, normalise, prompts, logits, components. Torch-free.

Facts matched from transformers' Sam2 processor: the image is resized to a `size`x`size` SQUARE (no aspect
keeping, no padding; bilinear with antialiasing), scaled to [0,1] and normalised with the ImageNet mean/std;
prompt coordinates are scaled per axis by `size/w` and `size/h` (the model itself adds the half-pixel shift);
the low-resolution logits (`4*size/16` square, 256 for 1024) are resized straight to the original (h, w) with
bilinear `align_corners=False` and no antialiasing, then thresholded at > 0.

ctxgen's own clean-up, applied after choosing the multi-mask output with the highest predicted IoU:
- `component_under_prompt`: keep one 8-connected foreground component: the one under the point (or, when
  the point falls on background, the one nearest to it), else the one with most pixels inside the box.
- `fill_holes`: a hole is a 4-connected background component that touches no image border; holes whose
  area is < `max_frac` x the foreground area (default 1 %) become foreground. Larger holes are kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

Point = tuple[float, float]
PromptBox = tuple[float, float, float, float]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HOLE_FRAC = 0.01
__all__ = ["HOLE_FRAC", "best_mask", "box_pixels", "component_under_prompt", "fill_holes", "frame_box",
           "label_components", "model_input", "normalise", "outline", "resize_square", "scale_prompt",
           "upsample_logits"]


def resize_square(rgb: np.ndarray, size: int = 1024) -> np.ndarray:
    """Resize uint8 (h, w, 3) to (size, size, 3), bilinear with antialiasing, like the Sam2 processor (R2)."""
    img = Image.fromarray(np.ascontiguousarray(rgb))
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def normalise(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, H, W): (x/255 - ImageNet mean) / std, fused as the processor does (R2)."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32) * np.float32(255.0)
    std = np.asarray(IMAGENET_STD, dtype=np.float32) * np.float32(255.0)
    x = (rgb.astype(np.float32) - mean) / std  # (H, W, 3)
    return np.ascontiguousarray(x.transpose(2, 0, 1))  # (3, H, W)


def model_input(rgb: np.ndarray, size: int = 1024) -> np.ndarray:
    """uint8 (h, w, 3) reference -> float32 (3, size, size) SAM pixel values (R2)."""
    return normalise(resize_square(rgb, size))


def scale_prompt(coords: Sequence[float], w: int, h: int, size: int = 1024) -> tuple[float, ...]:
    """Reference-pixel (x, y[, x, y]) -> model-input pixels: x*(size/w), y*(size/h), per axis (R2)."""
    if len(coords) % 2:
        raise ValueError(f"prompt coordinates come in (x, y) pairs, got {len(coords)} numbers")
    sx, sy = size / w, size / h
    return tuple(float(c) * (sx if i % 2 == 0 else sy) for i, c in enumerate(coords))


def frame_box(w: int, h: int) -> PromptBox:
    """The default prompt: the reference's whole frame as a box, in pixel-edge coordinates (R2)."""
    return (0.0, 0.0, float(w), float(h))


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source taps (i0, i1) and weight of i1 for bilinear resize, align_corners=False, no antialias."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def upsample_logits(logits: np.ndarray, h: int, w: int) -> np.ndarray:
    """float (H0, W0) -> float32 (h, w), what `F.interpolate(bilinear, align_corners=False)` computes (R2)."""
    x = np.asarray(logits, dtype=np.float32)
    y0, y1, wy = _linear_taps(x.shape[0], h)
    x0, x1, wx = _linear_taps(x.shape[1], w)
    rows = x[y0] * (1.0 - wy)[:, None] + x[y1] * wy[:, None]  # (h, W0)
    return rows[:, x0] * (1.0 - wx)[None, :] + rows[:, x1] * wx[None, :]  # (h, w)


def best_mask(logits: np.ndarray, iou: np.ndarray) -> tuple[int, np.ndarray]:
    """Pick the multi-mask output with the highest predicted IoU (first on ties): (index, (H0, W0) logits)."""
    k = int(np.argmax(np.asarray(iou).reshape(-1)))
    return k, logits[k]


def label_components(mask: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """Label True pixels: int32 (h, w), 0 = background, 1..n in row-major order of first pixel."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    g = w + 1  # global run coordinate: row * g + col; the gap column keeps rows apart
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = m
    d = np.diff(padded, axis=1)  # (h, w + 1): +1 at run starts, -1 at run ends (exclusive)
    sr, sc = np.nonzero(d == 1)
    _, ec = np.nonzero(d == -1)
    n_runs = sr.size
    if n_runs == 0:
        return np.zeros((h, w), dtype=np.int32), 0
    gs, ge = sr * g + sc, sr * g + ec
    k = 1 if connectivity == 8 else 0
    lo = np.searchsorted(ge, gs + g - k, side="right")  # first run below whose end reaches this start
    hi = np.searchsorted(gs, ge + g + k, side="left")  # past the last run below starting before this end
    counts = np.maximum(hi - lo, 0)
    src = np.repeat(np.arange(n_runs), counts)
    offsets = np.arange(src.size) - np.repeat(np.cumsum(counts) - counts, counts)
    dst = np.repeat(lo, counts) + offsets
    roots = _merge_runs(n_runs, src, dst)
    _, comp = np.unique(roots, return_inverse=True)  # roots are each component's first run
    labels = np.zeros(h * w, dtype=np.int32)
    labels[np.flatnonzero(m)] = np.repeat(comp.reshape(-1) + 1, ec - sc)  # fg pixels are runs in order
    return labels.reshape(h, w), int(comp.max()) + 1  # (h, w)


def _merge_runs(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Vectorised union-find over edges (a, b): every node -> the smallest node of its component."""
    parent = np.arange(n)
    while True:
        pa, pb = parent[a], parent[b]
        low = np.minimum(pa, pb)
        before = parent.copy()
        np.minimum.at(parent, pa, low)  # hook roots onto the smaller root (parent[i] <= i always)
        np.minimum.at(parent, pb, low)
        np.minimum.at(parent, a, low)
        np.minimum.at(parent, b, low)
        while True:  # pointer jumping until every node points at a root
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
        if np.array_equal(parent, before):
            return parent


def box_pixels(box: PromptBox, w: int, h: int) -> tuple[int, int, int, int]:
    """Pixel range (c1, r1, c2, r2) covered by a box: floor of the start, ceil of the end, clipped."""
    x1, y1, x2, y2 = box
    c1, r1 = min(max(math.floor(x1), 0), w), min(max(math.floor(y1), 0), h)
    c2, r2 = min(max(math.ceil(x2), 0), w), min(max(math.ceil(y2), 0), h)
    return c1, r1, c2, r2


def component_under_prompt(mask: np.ndarray, point: Point | None = None,
                           box: PromptBox | None = None) -> np.ndarray:
    """Keep the one 8-connected component the prompt picks (point rule first, else box rule; module doc)."""
    labels, n = label_components(mask, connectivity=8)
    if n == 0:
        return np.zeros(labels.shape, dtype=bool)
    h, w = labels.shape
    if point is not None:
        col = min(max(math.floor(point[0]), 0), w - 1)
        row = min(max(math.floor(point[1]), 0), h - 1)
        pick = int(labels[row, col])
        if pick == 0:  # the point is on background: the nearest component (lowest label on ties)
            rows, cols = np.nonzero(labels)
            dist = (rows - row) ** 2 + (cols - col) ** 2
            best = np.full(n + 1, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(best, labels[rows, cols], dist)
            pick = int(np.argmin(best))
    elif box is not None:
        c1, r1, c2, r2 = box_pixels(box, w, h)
        inside = np.bincount(labels[r1:r2, c1:c2].reshape(-1), minlength=n + 1)  # (n + 1,)
        inside[0] = 0
        if inside.max() == 0:
            return np.zeros(labels.shape, dtype=bool)
        pick = int(np.argmax(inside))
    else:
        raise ValueError("component_under_prompt needs a point or a box")
    return labels == pick


def fill_holes(mask: np.ndarray, max_frac: float = HOLE_FRAC) -> np.ndarray:
    """Fill 4-connected background components off the border with area < max_frac * foreground area."""
    m = np.asarray(mask, dtype=bool)
    fg_area = int(m.sum())
    labels, n = label_components(~m, connectivity=4)
    if n == 0 or fg_area == 0:
        return m.copy()
    area = np.bincount(labels.reshape(-1), minlength=n + 1)  # (n + 1,)
    border = np.zeros(n + 1, dtype=bool)
    border[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    small = (area < max_frac * fg_area) & ~border
    small[0] = False
    return m | small[labels]


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Foreground pixels within `width` 4-steps of background or the image edge (for previews)."""
    inner = np.asarray(mask, dtype=bool).copy()
    for _ in range(max(1, width)):
        core = np.zeros_like(inner)
        core[1:-1, 1:-1] = (inner[1:-1, 1:-1] & inner[:-2, 1:-1] & inner[2:, 1:-1]
                            & inner[1:-1, :-2] & inner[1:-1, 2:])
        inner = core
    return np.asarray(mask, dtype=bool) & ~inner
