"""Stage 3a: the token sequence and position ids (R13, R14, R17). Pure numpy, torch-free."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenLayout:
    """One source of truth for the sequence [text | main | layout | ref_0 ... ref_{N-1}]."""

    text_len: int  # T
    grid: tuple[int, int]  # (Ht, Wt) of main and layout
    ref_grids: tuple[tuple[int, int], ...]  # (th_n, tw_n) per reference
    seg_names: tuple[str, ...]  # ("text", "main", "layout", "ref0", "ref1", ...)
    seg_bounds: np.ndarray  # int64 (n_seg, 2): start, stop over the full sequence
    ids: np.ndarray  # float32 (S - T, 3): position ids of main, layout, refs in sequence order (R14)

    @property
    def seq_len(self) -> int:  # S
        return int(self.seg_bounds[-1, 1])

    @property
    def main_len(self) -> int:  # M
        return self.grid[0] * self.grid[1]
