"""Token sequence, position ids and closed-form counts (R13, R14, R17)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxgen.sequence.tokens import box_area, build_sequence, clip_box, expected_counts, span


def test_toy_scene_segments_and_ids_are_literal():
    # W=32, H=48 -> Wt=2, Ht=3; T=3; ref0 is 1x2 tokens, ref1 2x1 tokens
    tokens = build_sequence((32, 48), 3, [(1, 2), (2, 1)])
    assert tokens.span_names == ("text", "main", "layout", "ref0", "ref1")
    np.testing.assert_array_equal(tokens.span_bounds, [[0, 3], [3, 9], [9, 15], [15, 17], [17, 19]])
    assert tokens.span_bounds.dtype == np.int64
    assert tokens.seq_len == 19 and tokens.main_len == 6 and tokens.grid == (3, 2)
    expected = [
        [0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [0, 2, 0], [0, 2, 1],  # main (0, y, x)
        [1, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1], [1, 2, 0], [1, 2, 1],  # layout (1, y, x)
        [1, 3, 2], [1, 3, 3],  # ref0: (1, Ht + y, Wt + x)
        [1, 4, 4], [1, 5, 4],  # ref1: (1, Ht + th_0 + y, Wt + tw_0 + x)
    ]
    assert tokens.ids.dtype == np.float32
    np.testing.assert_array_equal(tokens.ids, np.array(expected, dtype=np.float32))


def test_ids_stay_exact_above_256():
    # 4096 px -> 256 tokens per side; bf16 would collide here, float32 must not (R14 ctxgen)
    tokens = build_sequence((4096, 4096), 0, [(3, 5)])
    ref = tokens.ids[span(tokens, "ref0").start - tokens.text_len :]  # (15, 3)
    assert ref[0].tolist() == [1.0, 256.0, 256.0]
    assert ref[-1].tolist() == [1.0, 258.0, 260.0]
    assert len({tuple(r) for r in ref.tolist()}) == 15


def test_segment_helper_and_unknown_name():
    tokens = build_sequence((64, 32), 5, [(2, 3)])
    assert span(tokens, "text") == slice(0, 5)
    assert span(tokens, "main") == slice(5, 13)
    assert span(tokens, "layout") == slice(13, 21)
    assert span(tokens, "ref0") == slice(21, 27)
    with pytest.raises(KeyError, match="ref1"):
        span(tokens, "ref1")


@pytest.mark.parametrize("size", [(0, 64), (64, 40), (-16, 16)])
def test_bad_canvas_is_rejected(size):
    with pytest.raises(ValueError, match="multiples of 16"):
        build_sequence(size, 2, [])


def test_bad_ref_grid_is_rejected():
    with pytest.raises(ValueError, match="grids must be positive"):
        build_sequence((64, 64), 2, [(0, 2)])


@settings(max_examples=60, deadline=None)
@given(
    wt=st.integers(1, 12),
    ht=st.integers(1, 12),
    text_len=st.integers(0, 20),
    grids=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), max_size=5),
)
def test_spans_cover_the_sequence_and_ids_follow_r14(wt, ht, text_len, grids):
    tokens = build_sequence((16 * wt, 16 * ht), text_len, grids)
    bounds = tokens.span_bounds
    assert bounds[0, 0] == 0 and bounds[-1, 1] == tokens.seq_len
    np.testing.assert_array_equal(bounds[1:, 0], bounds[:-1, 1])  # contiguous, non-overlapping
    assert (bounds[:, 1] >= bounds[:, 0]).all()
    lengths = [text_len, wt * ht, wt * ht] + [h * w for h, w in grids]
    np.testing.assert_array_equal(bounds[:, 1] - bounds[:, 0], lengths)
    assert tokens.seq_len == text_len + 2 * wt * ht + sum(h * w for h, w in grids)
    assert tokens.ids.shape == (tokens.seq_len - text_len, 3)
    ids = tokens.ids.astype(np.int64)
    y0, x0 = ht, wt
    for n, (h, w) in enumerate(grids):
        part = span(tokens, f"ref{n}")
        block = ids[part.start - text_len : part.stop - text_len]  # (h*w, 3)
        assert (block[:, 0] == 1).all()
        np.testing.assert_array_equal(block[:, 1], y0 + np.repeat(np.arange(h), w))
        np.testing.assert_array_equal(block[:, 2], x0 + np.tile(np.arange(w), h))
        y0, x0 = y0 + h, x0 + w
    # references never share a position id with each other, the layout or the main image
    assert len({tuple(r) for r in ids.tolist()}) == len(ids)


# The 4x4-token scene of test_masks: T=2, refs of 2x2 tokens with c = (3, 2), boxes overlapping in one token.
SCENE_MASKS = [np.array([[1, 0], [1, 1]], bool), np.array([[1, 1], [0, 0]], bool)]
SCENE_BOXES = [(0, 0, 2, 3), (1, 2, 4, 4)]


def test_expected_counts_by_hand():
    tokens = build_sequence((64, 64), 2, [(2, 2), (2, 2)])
    # CLA: (2 + 32)^2 + 4 * (2 + 3) + 4 * (2 + 2) = 1192; ICA: + 6 * 3 + 6 * 2 = 1222
    assert expected_counts(tokens, SCENE_MASKS, SCENE_BOXES) == (1192, 1222)
    # paper: |U| = 11 in-box main rows lose 2M = 32 keys each, gain |U B x B| = 36 + 36 - 1 = 71 plus 30 ref keys
    assert expected_counts(tokens, SCENE_MASKS, SCENE_BOXES, ica="paper") == (1192, 1192 - 32 * 11 + 71 + 30)
    with pytest.raises(ValueError, match="unknown ica mode"):
        expected_counts(tokens, SCENE_MASKS, SCENE_BOXES, ica="dense")


def test_box_helpers_clip_to_grid():
    assert clip_box((-2, 1, 9, 3), (4, 6)) == (0, 1, 6, 3)
    assert box_area((0, 1, 6, 3)) == 12
    assert box_area((3, 1, 2, 5)) == 0


@settings(max_examples=60, deadline=None)
@given(
    boxes=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=6
    ),
    fg=st.lists(st.integers(0, 4), min_size=6, max_size=6),
)
def test_paper_closed_form_matches_brute_force_sets(boxes, fg):
    # inclusion-exclusion over (possibly empty, overlapping) boxes vs explicit per-token key sets
    tokens = build_sequence((96, 96), 3, [(2, 2)] * len(boxes))
    masks = [np.arange(4).reshape(2, 2) < c for c in fg[: len(boxes)]]
    cells = [{(y, x) for y, x in itertools.product(range(y1, y2), range(x1, x2))} for x1, y1, x2, y2 in boxes]
    n_cla, n_paper = expected_counts(tokens, masks, boxes, ica="paper")
    total = n_cla
    for cell in itertools.product(range(6), range(6)):
        own = [n for n, c in enumerate(cells) if cell in c]
        if own:
            keys = 3 + len(set().union(*(cells[n] for n in own))) + sum(int(masks[n].sum()) for n in own)
            total += keys - (3 + 2 * 36)
    assert n_paper == total
