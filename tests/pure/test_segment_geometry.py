"""SAM pre/post-processing geometry (R2, `mask: auto`): exact values, torch-free."""

from __future__ import annotations

import subprocess
import sys
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxgen.models.sam_processing import (
    best_mask,
    box_pixels,
    component_under_prompt,
    fill_holes,
    frame_box,
    label_components,
    model_input,
    normalise,
    resize_square,
    scale_prompt,
    upsample_logits,
)


def _arr(rows: str) -> np.ndarray:
    """'#' = True, '.' = False, one string row per line."""
    return np.array([[c == "#" for c in r] for r in rows.split()], dtype=bool)


def _bfs_labels(m: np.ndarray, conn: int) -> np.ndarray:
    """Reference labelling by breadth-first search, row-major first-pixel order."""
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)] + ([(1, 1), (1, -1), (-1, 1), (-1, -1)] if conn == 8 else [])
    h, w = m.shape
    lab = np.zeros((h, w), dtype=np.int32)
    n = 0
    for r0 in range(h):
        for c0 in range(w):
            if m[r0, c0] and not lab[r0, c0]:
                n += 1
                lab[r0, c0] = n
                todo = deque([(r0, c0)])
                while todo:
                    r, c = todo.popleft()
                    for dr, dc in steps:
                        rr, cc = r + dr, c + dc
                        if 0 <= rr < h and 0 <= cc < w and m[rr, cc] and not lab[rr, cc]:
                            lab[rr, cc] = n
                            todo.append((rr, cc))
    return lab


def test_torch_free():
    code = "import sys, ctxgen.models.sam_processing; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scale_prompt_per_axis():
    assert scale_prompt((50, 25), w=200, h=100) == (256.0, 256.0)
    assert scale_prompt((0, 0, 200, 100), w=200, h=100) == (0.0, 0.0, 1024.0, 1024.0)
    assert scale_prompt((10, 30, 40, 60), w=80, h=120, size=64) == (8.0, 16.0, 32.0, 32.0)
    with pytest.raises(ValueError):
        scale_prompt((1, 2, 3), w=10, h=10)


def test_frame_box_and_box_pixels():
    assert frame_box(640, 480) == (0.0, 0.0, 640.0, 480.0)
    assert box_pixels((1.5, 2.2, 5.1, 7.0), w=10, h=10) == (1, 2, 6, 7)
    assert box_pixels((-3, -1, 12, 4.5), w=10, h=8) == (0, 0, 10, 5)


def test_normalise_values_and_layout():
    rgb = np.array([[[0, 255, 128]]], dtype=np.uint8)  # (1, 1, 3)
    x = normalise(rgb)
    assert x.shape == (3, 1, 1) and x.dtype == np.float32
    expected = [(0 - 0.485) / 0.229, (1 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    np.testing.assert_allclose(x[:, 0, 0], expected, rtol=1e-6)


def test_resize_square_bilinear():
    rgb = np.zeros((1, 2, 3), dtype=np.uint8)
    rgb[0, 1] = 255
    out = resize_square(rgb, size=4)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 0], [[0, 64, 191, 255]] * 4)
    assert model_input(rgb, size=4).shape == (3, 4, 4)


def test_upsample_logits_exact():
    x = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    expected = [[0.0, 0.25, 0.75, 1.0], [0.5, 0.75, 1.25, 1.5], [1.5, 1.75, 2.25, 2.5], [2.0, 2.25, 2.75, 3.0]]
    np.testing.assert_array_equal(upsample_logits(x, 4, 4), expected)
    np.testing.assert_array_equal(upsample_logits(x, 1, 4), [[1.0, 1.25, 1.75, 2.0]])
    down = np.arange(16, dtype=np.float32).reshape(4, 4)  # no antialias: 2 taps, 0.5 each
    np.testing.assert_array_equal(upsample_logits(down, 2, 2), [[2.5, 4.5], [10.5, 12.5]])
    assert upsample_logits(down, 3, 7).shape == (3, 7)


def test_best_mask_by_iou_first_on_ties():
    logits = np.stack([np.full((2, 2), float(i)) for i in range(3)])  # (3, 2, 2)
    k, best = best_mask(logits, np.array([0.2, 0.9, 0.9]))
    assert k == 1
    np.testing.assert_array_equal(best, np.ones((2, 2)))


def test_label_components_connectivity():
    m = _arr("#.# .#. #..")
    lab4, n4 = label_components(m, 4)
    lab8, n8 = label_components(m, 8)
    assert n4 == 4 and n8 == 1
    np.testing.assert_array_equal(lab4, [[1, 0, 2], [0, 3, 0], [4, 0, 0]])
    np.testing.assert_array_equal(lab8, [[1, 0, 1], [0, 1, 0], [1, 0, 0]])
    u = _arr("#.#.# #.#.# #####")  # two U arms joined only at the bottom row
    lab, n = label_components(u, 4)
    assert n == 1 and (lab[u] == 1).all()
    assert label_components(np.zeros((3, 4), bool), 8)[1] == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 14), st.integers(1, 14), st.integers(0, 2**32 - 1), st.sampled_from([4, 8]))
def test_label_components_matches_bfs(h, w, seed, conn):
    m = np.random.default_rng(seed).random((h, w)) < 0.55
    lab, n = label_components(m, conn)
    ref = _bfs_labels(m, conn)
    np.testing.assert_array_equal(lab, ref)
    assert n == ref.max()


def test_component_under_point_and_nearest():
    m = _arr("##..# ##..# ....# ##...")
    keep = component_under_prompt(m, point=(4.7, 1.2))
    np.testing.assert_array_equal(keep, _arr("....# ....# ....# ....."))
    near = component_under_prompt(m, point=(3.0, 0.0))  # on background: the right bar is nearest
    np.testing.assert_array_equal(near, _arr("....# ....# ....# ....."))
    tie = component_under_prompt(m, point=(1.0, 2.5))  # both left blocks 1 away: the lower label wins
    np.testing.assert_array_equal(tie, _arr("##... ##... ..... ....."))
    bottom = component_under_prompt(m, point=(0.0, 3.0))
    np.testing.assert_array_equal(bottom, _arr("..... ..... ..... ##..."))


def test_component_under_box():
    m = _arr("##..# ##..# ....# ##...")
    keep = component_under_prompt(m, box=(2.0, 0.0, 5.0, 4.0))  # only the right bar lies inside
    np.testing.assert_array_equal(keep, _arr("....# ....# ....# ....."))
    whole = component_under_prompt(m, box=frame_box(5, 4))  # most pixels: the 2x2 block (4 > 3)
    np.testing.assert_array_equal(whole, _arr("##... ##... ..... ....."))
    assert not component_under_prompt(m, box=(2.0, 0.0, 4.0, 2.0)).any()
    with pytest.raises(ValueError):
        component_under_prompt(m)


def test_fill_holes_small_only():
    m = np.ones((12, 12), dtype=bool)
    m[2, 2] = False  # 1-pixel hole
    m[5:9, 5:9] = False  # 16-pixel hole
    m[0, 6] = False  # touches the border: never a hole
    fg = int(m.sum())  # 126
    out = fill_holes(m, max_frac=2 / fg)  # threshold 2 pixels: only the 1-pixel hole is filled
    expected = m.copy()
    expected[2, 2] = True
    np.testing.assert_array_equal(out, expected)
    all_filled = fill_holes(m, max_frac=17 / fg)
    expected[5:9, 5:9] = True
    np.testing.assert_array_equal(all_filled, expected)
    assert not fill_holes(np.zeros((3, 3), bool)).any()


def test_fill_holes_uses_4_connected_background():
    m = _arr("##### #.### ##.## ##### #####")  # two diagonal 1-pixel holes: two holes of area 1 each
    np.testing.assert_array_equal(fill_holes(m, max_frac=1.5 / 23), np.ones((5, 5), bool))
    np.testing.assert_array_equal(fill_holes(m, max_frac=0.5 / 23), m)
