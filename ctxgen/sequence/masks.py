"""Stage 3b: the CLA and ICA attention masks (R15-R19; docs/spec.md). Pure numpy, torch-free. True = may attend.

A mask over S tokens is stored compactly: rows (queries) fall into a few classes that share one key set
(text/main/layout rows; the rows of each reference; main rows inside boxes, one class per distinct SET of
boxes containing them). `ClassMask` keeps the distinct key rows (C, S) and a row -> class index (S,);
dense, bit-packed and block-level views are derived from it on demand.

ICA variants (R16). "official" (default, what the adapter was trained on): every row keeps its CLA keys, and a
main row inside boxes B_n (n in its box set P) also sees fg(ref n) for all n in P. "paper" (Eq. 4, with the
union over P for rows in several boxes): a main row with P non-empty sees exactly text u {main tokens in
U_{n in P} B_n} u U_{n in P} fg(ref n), so no layout tokens, no main tokens outside its boxes and never a
background ref token (R15). Main rows outside every box, text, layout and ref rows keep their CLA keys, so
the paper mask is not symmetric: text and layout still see in-box main tokens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

import numpy as np

from ctxgen.core.errors import UserError
from ctxgen.scene.schema import IcaMode
from ctxgen.sequence.tokens import TokenSequence, build_sequence, clip_box, expected_counts, span

if TYPE_CHECKING:  # only the type: importing the layout stage pulls in Pillow and the scene model
    from ctxgen.layout.compose import Composition

logger = logging.getLogger(__name__)

MASK_KINDS = ("cla", "ica")  # R15, R16
ICA_MODES: tuple[str, ...] = get_args(IcaMode)
__all__ = ["MASK_KINDS", "ClassMask", "MaskSet", "block_schedule", "build_masks", "check_counts", "expected_counts",
           "build_tokens"]


@dataclass(frozen=True)
class ClassMask:
    """A boolean (S, S) mask as its distinct key rows plus a row -> class index: dense[q] = keys[row_class[q]]."""

    row_class: np.ndarray  # int32 (S,): class of each query row
    keys: np.ndarray  # bool (C, S): the key set of each class

    def dense(self) -> np.ndarray:
        """The full bool (S, S) mask; allocates S*S bytes (507 MB at S = 22,528)."""
        return self.keys[self.row_class]  # (S, S)

    def packed(self) -> np.ndarray:
        """np.packbits(dense, axis=-1) without building dense: pack the class rows, then gather."""
        return np.packbits(self.keys, axis=-1)[self.row_class]  # (S, ceil(S / 8))

    def count(self) -> int:
        """Number of allowed (query, key) pairs."""
        rows_per_class = np.bincount(self.row_class, minlength=self.keys.shape[0]).astype(np.int64)
        return int(rows_per_class @ self.keys.sum(axis=1, dtype=np.int64))

    def block_map(self, block: int) -> np.ndarray:
        """bool (ceil(S/b), ceil(S/b)): True where a b x b tile holds any allowed pair (for block-sparse kernels)."""
        if block <= 0:
            raise ValueError(f"block must be positive, got {block}")
        s, n_cls = self.row_class.shape[0], self.keys.shape[0]
        nb = -(-s // block)
        keys = np.zeros((n_cls, nb * block), dtype=bool)
        keys[:, :s] = self.keys
        key_blocks = keys.reshape(n_cls, nb, block).any(axis=-1)  # (C, nb)
        present = np.zeros((nb, n_cls), dtype=bool)
        present[np.arange(s) // block, self.row_class] = True  # (nb, C): classes met in each query block
        return present @ key_blocks  # bool matmul = OR over classes, (nb, nb)


@dataclass(frozen=True)
class MaskSet:
    """Both masks over the full sequence (rows are queries), stored compactly (R15, R16)."""

    cla_table: ClassMask  # R15
    ica_table: ClassMask  # R16, variant `ica_mode`
    ica_mode: str  # "official" | "paper"

    @property
    def seq_len(self) -> int:  # S
        return int(self.cla_table.row_class.shape[0])

    def table(self, kind: str) -> ClassMask:
        """The compact mask for kind "cla" or "ica"."""
        if kind == "cla":
            return self.cla_table
        if kind == "ica":
            return self.ica_table
        raise ValueError(f"unknown mask kind {kind!r}; use one of {MASK_KINDS}")

    def dense(self, kind: str) -> np.ndarray:
        """bool (S, S); allocates S*S bytes."""
        return self.table(kind).dense()

    def packed(self, kind: str) -> np.ndarray:
        """uint8 (S, ceil(S/8)) equal to np.packbits(dense(kind), axis=-1)."""
        return self.table(kind).packed()

    def count(self, kind: str) -> int:
        """Number of True entries."""
        return self.table(kind).count()

    def density(self, kind: str) -> float:
        """Fraction of allowed query/key pairs."""
        return self.count(kind) / float(self.seq_len) ** 2

    def row_classes(self, kind: str) -> np.ndarray:
        """int32 (S,): the class of each query row."""
        return self.table(kind).row_class

    def class_keys(self, kind: str) -> np.ndarray:
        """bool (C, S): the key set of each row class."""
        return self.table(kind).keys

    def block_map(self, kind: str, block: int = 128) -> np.ndarray:
        """bool (ceil(S/b), ceil(S/b)) tile occupancy."""
        return self.table(kind).block_map(block)


def _box_membership(grid: tuple[int, int], token_boxes: Sequence[Sequence[int]]) -> np.ndarray:
    """bool (M, N): main token (row-major) r*Wt + c lies in box n, i.e. y1t <= r < y2t and x1t <= c < x2t (R8)."""
    ht, wt = grid
    if not token_boxes:
        return np.zeros((ht * wt, 0), dtype=bool)
    x1, y1, x2, y2 = (np.array(v, dtype=np.int64)[:, None, None] for v in zip(*token_boxes))  # each (N, 1, 1)
    rows = np.arange(ht)[None, :, None]  # (1, Ht, 1)
    cols = np.arange(wt)[None, None, :]  # (1, 1, Wt)
    inside = (y1 <= rows) & (rows < y2) & (x1 <= cols) & (cols < x2)  # (N, Ht, Wt)
    return inside.reshape(len(token_boxes), ht * wt).T  # (M, N)


def _cla_table(tokens: TokenSequence, fg: np.ndarray) -> ClassMask:
    """R15: class 0 = text/main/layout rows -> T u I u L; class 1+n = ref n rows -> text u fg(ref n)."""
    s, cut = tokens.seq_len, tokens.text_len + 2 * tokens.main_len
    keys = np.zeros((1 + fg.shape[0], s), dtype=bool)
    keys[0, :cut] = True
    keys[1:, : tokens.text_len] = True
    keys[1:] |= fg
    row_class = np.zeros(s, dtype=np.int32)
    for n in range(fg.shape[0]):
        row_class[span(tokens, f"ref{n}")] = 1 + n
    return ClassMask(row_class, keys)


def _ica_table(tokens: TokenSequence, fg: np.ndarray, cla: ClassMask, member: np.ndarray, mode: str) -> ClassMask:
    """R16: the CLA classes plus one class per distinct set of boxes containing a main token."""
    t, m = tokens.text_len, tokens.main_len
    inside = member.any(axis=1)  # (M,)
    patterns, inverse = np.unique(member[inside], axis=0, return_inverse=True)  # (P, N), (#inside,)
    refs_fg = patterns @ fg  # (P, S): foreground of the refs whose boxes contain the row
    if mode == "official":
        extra = cla.keys[0] | refs_fg
    else:  # paper, Eq. 4 with the union over the row's boxes: text, own boxes' main tokens, their refs' fg
        extra = refs_fg
        extra[:, :t] = True
        extra[:, t : t + m] |= patterns @ member.T  # (P, M): main tokens sharing a box with the row
    row_class = cla.row_class.copy()
    row_class[t + np.flatnonzero(inside)] = cla.keys.shape[0] + inverse.reshape(-1)
    return ClassMask(row_class, np.concatenate([cla.keys, extra], axis=0))


def build_masks(
    tokens: TokenSequence,
    token_masks: Sequence[np.ndarray],
    token_boxes: Sequence[tuple[int, int, int, int]],
    ica: str = "official",
) -> MaskSet:
    """CLA (R15) and ICA (R16, `ica` = "official" or "paper") masks from the token masks m_n and token boxes B_n."""
    if ica not in ICA_MODES:
        raise UserError(f"ica: unknown mode {ica!r}; set it to 'official' or 'paper'")
    n_refs = len(tokens.ref_grids)
    if len(token_masks) != n_refs or len(token_boxes) != n_refs:
        raise ValueError(f"{n_refs} reference grids but {len(token_masks)} token masks, {len(token_boxes)} boxes")
    fg = np.zeros((n_refs, tokens.seq_len), dtype=bool)  # foreground key row of each reference
    for n, (mask, grid) in enumerate(zip(token_masks, tokens.ref_grids)):
        if tuple(np.shape(mask)) != grid:
            raise ValueError(f"token mask {n} has shape {np.shape(mask)}, expected {grid}")
        fg[n, span(tokens, f"ref{n}")] = np.asarray(mask, dtype=bool).reshape(-1)  # (th*tw,)
    cla = _cla_table(tokens, fg)
    member = _box_membership(tokens.grid, [clip_box(b, tokens.grid) for b in token_boxes])
    return MaskSet(cla, _ica_table(tokens, fg, cla, member, ica), ica)


def check_counts(
    masks: MaskSet,
    tokens: TokenSequence,
    token_masks: Sequence[np.ndarray],
    token_boxes: Sequence[tuple[int, int, int, int]],
) -> None:
    """Internal invariant: mask counts equal the closed forms of R17 (or the Eq. 4 form for ica="paper")."""
    want = expected_counts(tokens, token_masks, token_boxes, ica=masks.ica_mode)
    got = (masks.count("cla"), masks.count("ica"))
    if got != want:
        raise RuntimeError(
            f"mask counts (cla, ica={masks.ica_mode}) = {got} but the closed form (R17) gives {want}"
        )


def block_schedule(n_double: int, n_single: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Mask kind per double and per single block (R18): doubles CLA, singles i < n_single // 2 ICA, rest CLA."""
    if n_double < 0 or n_single < 0:
        raise ValueError(f"block counts must be >= 0, got {n_double}, {n_single}")
    singles = tuple("ica" if i < n_single // 2 else "cla" for i in range(n_single))
    return ("cla",) * n_double, singles


def build_tokens(comp: Composition, text_len: int, ica: str = "official") -> tuple[TokenSequence, MaskSet]:
    """The token sequence and masks of a composition, built once per scene (R13-R17, R19)."""
    start = time.perf_counter()
    token_masks = [ref.token_mask for ref in comp.refs]
    tokens = build_sequence(comp.size, text_len, [ref.grid for ref in comp.refs])
    masks = build_masks(tokens, token_masks, comp.token_boxes, ica)
    check_counts(masks, tokens, token_masks, comp.token_boxes)
    logger.debug(
        "token plan: S=%d, cla %.1f%%, ica(%s) %.1f%% allowed, %.1f ms",
        tokens.seq_len, 100 * masks.density("cla"), ica, 100 * masks.density("ica"),
        1e3 * (time.perf_counter() - start),
    )
    return tokens, masks
