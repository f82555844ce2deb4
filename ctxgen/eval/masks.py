"""Small masks in records: a 64x64 nearest-neighbour thumbnail, run-length encoded (for the report gallery)."""

from __future__ import annotations

import numpy as np

from ctxgen.eval.metrics import resize_nearest

SIDE = 64


def encode(mask: np.ndarray, side: int = SIDE) -> list[int]:
    """Row-major run lengths of the downsampled mask, starting with a run of False (may be 0)."""
    flat = resize_nearest(np.asarray(mask, dtype=np.uint8), side, side).reshape(-1) != 0
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] else runs


def decode(runs: list[int], side: int = SIDE) -> np.ndarray:
    """The (side, side) bool mask of `encode`."""
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape(side, side)
