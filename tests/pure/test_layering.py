"""Instance Layering Prioritization (R11): containment, seeded priorities, empty masks, explicit z."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxgen.layout.layering import auto_order, layer_order, overlap_stats


def _rect(h: int, w: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_overlap_stats_exact():
    a, b = _rect(20, 30, 0, 0, 10, 10), _rect(20, 30, 5, 5, 15, 25)
    area, inter = overlap_stats([a, b, np.zeros((20, 30), bool)])
    assert area.tolist() == [100, 200, 0]
    assert inter.tolist() == [[100, 25, 0], [25, 200, 0], [0, 0, 0]]


def test_overlap_stats_odd_sizes():
    rng = np.random.default_rng(3)
    masks = [rng.random((13, 7)) < 0.5 for _ in range(4)]  # 91 pixels: packing pads the last word
    area, inter = overlap_stats(masks)
    for i in range(4):
        for j in range(4):
            assert inter[i, j] == np.logical_and(masks[i], masks[j]).sum()


def test_containment_puts_container_below():
    big, small = _rect(32, 32, 0, 0, 30, 30), _rect(32, 32, 10, 10, 20, 20)
    for seed in range(20):
        assert layer_order([small, big], [None, None], seed) == (1, 0)
        assert layer_order([big, small], [None, None], seed) == (0, 1)


def test_identical_masks_lower_index_on_top():
    m = _rect(16, 16, 2, 2, 9, 9)
    for seed in range(10):
        assert layer_order([m, m.copy(), m.copy()], [None] * 3, seed) == (2, 1, 0)


def test_empty_masks_go_last_in_scene_order():
    e = np.zeros((16, 16), bool)
    a, b = _rect(16, 16, 0, 0, 4, 4), _rect(16, 16, 8, 8, 12, 12)
    order = layer_order([e, a, e.copy(), b], [None] * 4, 5)
    assert order[2:] == (0, 2) and set(order[:2]) == {1, 3}


def test_partial_overlap_larger_goes_down():
    # A (area 100) and B (area 50) overlap by 25: IoU 0.2; p_A in [0.22, 0.41], p_B in [0.50, 0.79]
    a, b = _rect(40, 40, 0, 0, 10, 10), _rect(40, 40, 5, 5, 15, 10)
    for seed in range(50):
        assert layer_order([b, a], [None, None], seed) == (1, 0)


def test_seed_changes_order_of_independent_layers():
    a, b = _rect(16, 16, 0, 0, 4, 4), _rect(16, 16, 8, 8, 12, 12)
    orders = {layer_order([a, b], [None, None], seed) for seed in range(40)}
    assert orders == {(0, 1), (1, 0)}


def test_priority_uses_seeded_generator_exactly():
    # two disjoint masks: p_i = U(0,1) drawn in index order; the lower priority pops first
    a, b = _rect(16, 16, 0, 0, 4, 4), _rect(16, 16, 8, 8, 12, 12)
    for seed in range(10):
        p = np.random.default_rng(seed).random(2)
        expected = (0, 1) if p[0] <= p[1] else (1, 0)
        assert auto_order([a, b], seed) == expected


def test_z_override():
    big, small = _rect(32, 32, 0, 0, 30, 30), _rect(32, 32, 10, 10, 20, 20)
    assert layer_order([big, small], [None, -1], 0) == (1, 0)  # z <= -1 goes below all automatic layers
    assert layer_order([big, small], [1, None], 0) == (1, 0)  # z >= 1 goes above
    assert layer_order([big, small], [2, 1], 0) == (1, 0)
    with pytest.raises(ValueError, match="z values"):
        layer_order([big, small], [None], 0)


def test_sixteen_masks_at_2048_is_a_permutation():
    rng = np.random.default_rng(0)
    masks = []
    for _ in range(16):
        y, x = rng.integers(0, 1500, 2)
        masks.append(_rect(2048, 2048, y, x, y + int(rng.integers(200, 800)), x + int(rng.integers(200, 800))))
    order = layer_order(masks, [None] * 16, 0)
    assert sorted(order) == list(range(16))


@st.composite
def _scenes(draw):
    h, w = draw(st.integers(4, 12)), draw(st.integers(4, 12))
    n = draw(st.integers(1, 6))
    masks = []
    for _ in range(n):
        kind = draw(st.sampled_from(["rect", "copy", "empty"]))
        if kind == "copy" and masks:
            src = masks[draw(st.integers(0, len(masks) - 1))]
            y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
            masks.append(src & _rect(h, w, y0, x0, h, w))  # a subset of an earlier mask (maybe equal, maybe empty)
        elif kind == "empty":
            masks.append(np.zeros((h, w), bool))
        else:
            y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
            masks.append(_rect(h, w, y0, x0, draw(st.integers(y0 + 1, h)), draw(st.integers(x0 + 1, w))))
    z = draw(st.lists(st.one_of(st.none(), st.integers(-2, 2)), min_size=n, max_size=n))
    return masks, z, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=200, deadline=None)
@given(_scenes())
def test_order_properties(case):
    masks, z, seed = case
    order = layer_order(masks, z, seed)
    assert sorted(order) == list(range(len(masks)))  # a permutation
    assert order == layer_order([m.copy() for m in masks], list(z), seed)  # deterministic
    pos = {i: k for k, i in enumerate(order)}
    key = [0 if v is None else v for v in z]
    assert [key[i] for i in order] == sorted(key)  # z respected
    area = [int(m.sum()) for m in masks]
    for i, mi in enumerate(masks):
        for j, mj in enumerate(masks):
            if i == j or key[i] != key[j] or area[i] == 0 or area[j] == 0:
                continue
            if not (mi & ~mj).any():  # i inside j: i is drawn after j (identical: lower index on top)
                if (mj & ~mi).any() or i < j:
                    assert pos[i] > pos[j]
    auto = auto_order(masks, seed)
    k = sum(a > 0 for a in area)
    assert all(area[i] > 0 for i in auto[:k]) and list(auto[k:]) == sorted(auto[k:])  # empty masks last
