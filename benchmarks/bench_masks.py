"""Token plan cost (R13-R19): build time of ids + masks, dump time, and the fraction of allowed pairs.

Run from the repository root: PYTHONPATH=. python3 benchmarks/bench_masks.py (or after pip install -e .)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ctxgen.sequence.dump import write_dump
from ctxgen.sequence.masks import build_masks, check_counts
from ctxgen.sequence.tokens import build_sequence

TEXT_LEN = 512  # T5 max_sequence_length of the real model
BASE_TOKENS = {512: 32, 768: 48}  # R4 base size -> reference token side (square references)


def ellipse_mask(side: int) -> np.ndarray:
    """bool (side, side): the inscribed ellipse, a typical cut-out (~78 % foreground)."""
    yy, xx = np.indices((side, side))  # (2, side, side)
    r = (side - 1) / 2
    return ((yy - r) / (r + 0.5)) ** 2 + ((xx - r) / (r + 0.5)) ** 2 <= 1


def boxes_for(n_refs: int, grid_side: int) -> list[tuple[int, int, int, int]]:
    """n overlapping square token boxes, 45 % of the canvas side, spread along the diagonal."""
    side = int(0.45 * grid_side)
    starts = np.linspace(0, grid_side - side, n_refs).astype(int)
    return [(int(s), int(s), int(s) + side, int(s) + side) for s in starts]


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time in ms over `repeats` runs, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times), out


def run(px: int, n_refs: int, ref_side: int, full: bool, folder: Path) -> None:
    """One scenario: build, dump, densities."""
    grid_side = px // 16
    masks_in = [np.ones((ref_side, ref_side), bool) if full else ellipse_mask(ref_side)] * n_refs
    boxes = boxes_for(n_refs, grid_side)

    def build():
        tokens = build_sequence((px, px), TEXT_LEN, [(ref_side, ref_side)] * n_refs)
        masks = build_masks(tokens, masks_in, boxes)
        check_counts(masks, tokens, masks_in, boxes)
        return tokens, masks

    t_build, (tokens, masks) = timed(build, 5)
    t_pack, _ = timed(lambda: (masks.packed("cla"), masks.packed("ica")), 3)
    target = folder / f"tokens_{px}_{n_refs}.npz"
    t_dump, _ = timed(lambda: write_dump(target, tokens, masks), 3)
    fg = "full" if full else "ellipse"
    print(
        f"{px:>4}^2 {n_refs} refs ({ref_side}x{ref_side} tok, fg {fg:>7}) S={tokens.seq_len:>6}: "
        f"build {t_build:6.1f} ms, pack both {t_pack:6.1f} ms, write_dump {t_dump:6.1f} ms "
        f"({target.stat().st_size / 1e6:.2f} MB); allowed CLA {100 * masks.density('cla'):.1f} %, "
        f"ICA {100 * masks.density('ica'):.1f} %; classes CLA {masks.class_keys('cla').shape[0]}, "
        f"ICA {masks.class_keys('ica').shape[0]}"
    )


def main() -> None:
    """The scenarios named in the spec's cost section."""
    with tempfile.TemporaryDirectory() as tmp:
        for full in (False, True):
            run(1024, 6, BASE_TOKENS[768], full, Path(tmp))
            run(768, 3, BASE_TOKENS[512], full, Path(tmp))
            run(768, 6, BASE_TOKENS[512], full, Path(tmp))


if __name__ == "__main__":
    main()
