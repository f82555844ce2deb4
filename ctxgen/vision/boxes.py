"""Box arithmetic shared by detection and evaluation: IoU and greedy NMS, in pixel xyxy. Torch-free (E1, E3)."""

from __future__ import annotations

import numpy as np

__all__ = ["area", "iou_many", "nms", "round_crop_box"]


def area(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N,) width * height, no +1 (the convention of both benchmarks' code)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def iou_many(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU of each of (N, 4) boxes with one box: intersection clipped at 0, union = areas - intersection (E1)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(box, dtype=np.float64).reshape(4)
    iw = np.maximum(np.minimum(b[:, 2], g[2]) - np.maximum(b[:, 0], g[0]), 0.0)
    ih = np.maximum(np.minimum(b[:, 3], g[3]) - np.maximum(b[:, 1], g[1]), 0.0)
    inter = iw * ih
    union = area(b) + area(g[None])[0] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS as torchvision.ops.nms: highest score first, drop boxes with IoU > threshold; kept indices."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    alive = np.ones(len(b), dtype=bool)
    for i in order:
        if not alive[i]:
            continue
        keep.append(int(i))
        alive &= ~(iou_many(b, b[i]) > threshold)
        alive[i] = False
    return np.asarray(keep, dtype=np.int64)


def round_crop_box(box: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    """A float box -> integer crop: each coordinate rounded half to even, then clipped to the image (E3)."""
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    return max(0, x1), max(0, y1), min(w, x2), min(h, y2)
