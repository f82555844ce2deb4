"""Stage 3a: the token sequence, its spans and position ids (R13, R14, R17; docs/spec.md). Torch-free.

A "span" is one contiguous part of the sequence: `text`, `main`, `layout` or `ref<n>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ctxgen.core.units import TOKEN

SPAN_KINDS = ("text", "main", "layout", "ref")  # `ref` spans are numbered: ref0, ref1, ...


@dataclass(frozen=True)
class TokenSequence:
    """One source of truth for the sequence [text | main | layout | ref_0 ... ref_{N-1}]."""

    text_len: int  # T
    grid: tuple[int, int]  # (Ht, Wt) of main and layout
    ref_grids: tuple[tuple[int, int], ...]  # (th_n, tw_n) per reference
    span_names: tuple[str, ...]  # ("text", "main", "layout", "ref0", "ref1", ...)
    span_bounds: np.ndarray  # int64 (n_spans, 2): start, stop over the full sequence
    ids: np.ndarray  # float32 (S - T, 3): position ids of main, layout, refs in sequence order (R14)

    @property
    def seq_len(self) -> int:  # S
        return int(self.span_bounds[-1, 1])

    @property
    def main_len(self) -> int:  # M
        return self.grid[0] * self.grid[1]


def _grid_ids(m: float, h: int, w: int, y0: int, x0: int) -> np.ndarray:
    """Row-major ids (m, y0 + y, x0 + x) of an h x w token grid (R14)."""
    yx = np.indices((h, w), dtype=np.float32).reshape(2, h * w).T  # (h*w, 2)
    out = np.empty((h * w, 3), dtype=np.float32)
    out[:, 0] = m
    out[:, 1] = yx[:, 0] + y0
    out[:, 2] = yx[:, 1] + x0
    return out


def build_sequence(size: tuple[int, int], text_len: int, ref_grids: Sequence[tuple[int, int]]) -> TokenSequence:
    """Segments (R13) and float32 position ids (R14) for a W x H canvas, T text tokens and the reference grids."""
    width, height = size
    if width <= 0 or height <= 0 or width % TOKEN or height % TOKEN:
        raise ValueError(f"canvas size {size} must be positive multiples of {TOKEN}")
    if text_len < 0:
        raise ValueError(f"text_len must be >= 0, got {text_len}")
    grids = tuple((int(th), int(tw)) for th, tw in ref_grids)
    if any(th <= 0 or tw <= 0 for th, tw in grids):
        raise ValueError(f"reference grids must be positive, got {grids}")
    ht, wt = height // TOKEN, width // TOKEN
    names = SPAN_KINDS[:3] + tuple(f"{SPAN_KINDS[3]}{n}" for n in range(len(grids)))
    lengths = np.array([text_len, ht * wt, ht * wt] + [th * tw for th, tw in grids], dtype=np.int64)
    stops = np.cumsum(lengths)
    bounds = np.stack([stops - lengths, stops], axis=1)  # (n_spans, 2)
    y_offsets = ht + np.concatenate([[0], np.cumsum([th for th, _ in grids], dtype=np.int64)])
    x_offsets = wt + np.concatenate([[0], np.cumsum([tw for _, tw in grids], dtype=np.int64)])
    parts = [_grid_ids(0.0, ht, wt, 0, 0), _grid_ids(1.0, ht, wt, 0, 0)]
    parts += [_grid_ids(1.0, th, tw, int(y_offsets[n]), int(x_offsets[n])) for n, (th, tw) in enumerate(grids)]
    ids = np.concatenate(parts, axis=0)  # (S - T, 3)
    return TokenSequence(text_len, (ht, wt), grids, names, bounds, ids)


def span(tokens: TokenSequence, name: str) -> slice:
    """The positions of span `name` ("text", "main", "layout", "ref<n>") in the full sequence (R13)."""
    try:
        i = tokens.span_names.index(name)
    except ValueError:
        raise KeyError(f"no span {name!r}; spans are {tokens.span_names}") from None
    start, stop = tokens.span_bounds[i]
    return slice(int(start), int(stop))


def box_area(box: tuple[int, int, int, int]) -> int:
    """Token count of an end-exclusive token box (x1t, y1t, x2t, y2t) (R8); 0 if empty."""
    x1, y1, x2, y2 = box
    return max(0, x2 - x1) * max(0, y2 - y1)


def clip_box(box: Sequence[int], grid: tuple[int, int]) -> tuple[int, int, int, int]:
    """A token box intersected with the (Ht, Wt) grid, as the R8 membership test sees it."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return max(x1, 0), max(y1, 0), min(x2, grid[1]), min(y2, grid[0])


def _intersection_powers(boxes: Sequence[tuple[int, int, int, int]], grid: tuple[int, int]) -> tuple[int, int]:
    """Inclusion-exclusion over box subsets: (|U B_n|, |U B_n x B_n|) = sums of (-1)^(|J|+1) |cap_J B|^(1, 2)."""
    union, union_sq = 0, 0

    def walk(start: int, cur: tuple[int, int, int, int], depth: int) -> None:
        nonlocal union, union_sq
        for j in range(start, len(boxes)):
            x1, y1, x2, y2 = boxes[j]
            nxt = (max(cur[0], x1), max(cur[1], y1), min(cur[2], x2), min(cur[3], y2))
            area = box_area(nxt)
            if area == 0:  # every superset of J is empty too: prune
                continue
            sign = 1 if depth % 2 == 0 else -1
            union += sign * area
            union_sq += sign * area * area
            walk(j + 1, nxt, depth + 1)

    walk(0, (0, 0, grid[1], grid[0]), 0)
    return union, union_sq


def expected_counts(
    tokens: TokenSequence,
    token_masks: Sequence[np.ndarray],
    token_boxes: Sequence[tuple[int, int, int, int]],
    ica: str = "official",
) -> tuple[int, int]:
    """Closed-form numbers of allowed pairs (|CLA|, |ICA|) (R17); `ica="paper"` uses the Eq. 4 form (R16).

    paper: a main query q in the union U of boxes has T + |U_{n: q in B_n} B_n| + sum_{n: q in B_n} c_n keys
    instead of T + 2M, so |ICA| = |CLA| - 2M|U| + |U_n B_n x B_n| + sum_n |B_n| c_n, the two unions by
    inclusion-exclusion over box intersections (rectangles, so |cap_J (B x B)| = |cap_J B|^2).
    """
    t, m = tokens.text_len, tokens.main_len
    fg = [int(np.count_nonzero(mask)) for mask in token_masks]
    lens = [th * tw for th, tw in tokens.ref_grids]
    n_cla = (t + 2 * m) ** 2 + sum(ln * (t + c) for ln, c in zip(lens, fg))
    boxes = [clip_box(box, tokens.grid) for box in token_boxes]
    extra = sum(box_area(box) * c for box, c in zip(boxes, fg))
    if ica == "official":
        return n_cla, n_cla + extra
    if ica == "paper":
        union, union_sq = _intersection_powers(boxes, tokens.grid)
        return n_cla, n_cla - 2 * m * union + union_sq + extra
    raise ValueError(f"unknown ica mode {ica!r}; use 'official' or 'paper'")
