"""Feature arithmetic shared by evaluation (E3, E4) and dataset construction (D4). Torch-free.

`resize_nearest` reproduces OpenCV's INTER_NEAREST (the published scripts put masks on the patch grid with it);
`masked_mean` pools patch features under such a grid mask; `cosine` is torch's cosine similarity in float64.
"""

from __future__ import annotations

import numpy as np


def resize_nearest(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """`cv2.resize(mask, (width, height), interpolation=INTER_NEAREST)`: source index floor(x * (1 / (dst/src)))."""
    src = np.asarray(mask)
    sh, sw = src.shape[:2]
    ifx, ify = 1.0 / (width / sw), 1.0 / (height / sh)  # the double arithmetic OpenCV uses
    xs = np.minimum(np.floor(np.arange(width) * ifx).astype(np.int64), sw - 1)
    ys = np.minimum(np.floor(np.arange(height) * ify).astype(np.int64), sh - 1)
    return src[ys][:, xs]


def masked_mean(features: np.ndarray, grid_mask: np.ndarray) -> np.ndarray:
    """Mean of the (P, D) patch features under a flattened (P,) mask; NaN when the mask is empty (E3)."""
    f = np.asarray(features, dtype=np.float64)
    m = np.asarray(grid_mask, dtype=bool).reshape(-1)
    if not m.any():
        return np.full(f.shape[-1], np.nan)
    return f[m].mean(axis=0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """cos(a, b) as torch.cosine_similarity (eps 1e-8 on each norm); NaN in, NaN out."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    na, nb = max(float(np.linalg.norm(a)), 1e-8), max(float(np.linalg.norm(b)), 1e-8)
    return float(np.dot(a, b) / (na * nb))
