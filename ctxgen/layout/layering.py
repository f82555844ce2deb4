"""Instance Layering Prioritization (R11; docs/spec.md): containment-first order, seeded priorities.

Torch-free.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

_POPCOUNT8 = np.array([bin(v).count("1") for v in range(256)], dtype=np.int64)  # bits set per byte value


def _popcount_rows(words: np.ndarray) -> np.ndarray:
    """Set bits per row of a (n, k) uint64 array, exact."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(words).sum(axis=1, dtype=np.int64)
    as_bytes = words.view(np.uint8)  # (n, 8k)
    return _POPCOUNT8[as_bytes].sum(axis=1)


def overlap_stats(masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Exact areas (n,) and pairwise intersections (n, n) of boolean masks via packed bits (R11)."""
    n = len(masks)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.int64)
    flat = np.stack([np.asarray(m, dtype=bool).reshape(-1) for m in masks])  # (n, H*W)
    packed = np.packbits(flat, axis=1)  # (n, ceil(H*W/8)) uint8
    pad = (-packed.shape[1]) % 8
    packed = np.pad(packed, ((0, 0), (0, pad)))  # (n, 8k)
    words = packed.view(np.uint64)  # (n, k)
    inter = np.empty((n, n), np.int64)
    for i in range(n):
        inter[i] = _popcount_rows(words & words[i])
    return np.diag(inter).copy(), inter


def _relations(area: np.ndarray, inter: np.ndarray) -> tuple[list[set[int]], np.ndarray, np.ndarray]:
    """Containment edges (container -> contained), in-degrees, and the partial-overlap matrix (R11)."""
    n = area.size
    children: list[set[int]] = [set() for _ in range(n)]
    indeg = np.zeros(n, np.int64)
    partial = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(i + 1, n):
            if area[i] == 0 or area[j] == 0 or inter[i, j] == 0:
                continue
            if inter[i, j] == area[i]:  # i inside j (identical masks land here: the lower index goes on top)
                children[j].add(i)
                indeg[i] += 1
            elif inter[i, j] == area[j]:  # j inside i
                children[i].add(j)
                indeg[j] += 1
            else:
                partial[i, j] = partial[j, i] = True
    return children, indeg, partial


def _priority(i: int, area: np.ndarray, iou: np.ndarray, partial: np.ndarray, rng: np.random.Generator) -> float:
    """R11 priority: U(0,1) without partial overlaps, else clamp(1-(avg+0.1W)+U(-0.2,0.2)*max(0,1-0.8avg), 0, 1)."""
    partners = np.flatnonzero(partial[i])
    if partners.size == 0:
        return float(rng.random())
    w_ij = iou[i, partners]
    total = float(w_ij.sum())
    share = area[i] / (area[i] + area[partners])
    avg = float((share * w_ij).sum()) / total if total > 0 else 0.5
    spread = max(0.0, 1.0 - 0.8 * avg)
    p = 1.0 - (avg + 0.1 * total) + float(rng.uniform(-0.2, 0.2)) * spread
    return min(1.0, max(0.0, p))


def auto_order(masks: Sequence[np.ndarray], seed: int) -> tuple[int, ...]:
    """R11 automatic order, bottom -> top: containers before contained, then a min-heap on priority.

    A priority is drawn from `np.random.default_rng(seed)` when a layer becomes available (first all
    available layers in index order, then as each pop frees contained layers), so the same masks and
    seed give the same order. Ties pop the lower index first. Empty masks go last, in scene order.
    """
    area, inter = overlap_stats(masks)
    n = area.size
    union = area[:, None] + area[None, :] - inter  # (n, n)
    iou = np.divide(inter, union, out=np.zeros((n, n)), where=union > 0)
    children, indeg, partial = _relations(area, inter)
    rng = np.random.default_rng(seed)
    heap = [(_priority(i, area, iou, partial, rng), i) for i in range(n) if indeg[i] == 0 and area[i] > 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        _, i = heapq.heappop(heap)
        order.append(i)
        for c in sorted(children[i]):
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(heap, (_priority(c, area, iou, partial, rng), c))
    order.extend(i for i in range(n) if area[i] == 0)
    return tuple(order)


def layer_order(masks: Sequence[np.ndarray], z: Sequence[int | None], seed: int) -> tuple[int, ...]:
    """R11 layering order bottom -> top, with explicit z overriding the automatic order.

    The automatic order (see `auto_order`) is stably sorted by key (z if given, else 0): layers with
    z >= 1 go above every automatic layer, z <= -1 below, equal keys keep their automatic order. An
    explicit z may therefore put a contained mask under its container; that is the user's choice.
    """
    if len(z) != len(masks):
        raise ValueError(f"layer_order: {len(masks)} masks but {len(z)} z values")
    auto = auto_order(masks, seed)
    return tuple(sorted(auto, key=lambda i: 0 if z[i] is None else z[i]))
