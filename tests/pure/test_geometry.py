"""Layout geometry (R4, R5, R8, R9): exact tables, hand-checked placements, bilinear parity with torch."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxgen.layout.geometry import (
    Placement,
    base_size,
    bilinear_resize,
    fit_contain,
    fit_distort,
    fit_image,
    fit_instance,
    paste,
    paste_window,
    pixel_box,
    place,
    resize_dims,
    tight_box,
    token_box,
)


@pytest.mark.parametrize(
    ("W", "H", "base"),
    [(256, 256, 256), (384, 384, 256), (400, 2048, 384), (512, 512, 384), (528, 528, 512),
     (768, 1024, 512), (784, 784, 768), (1024, 1024, 768), (1040, 2048, 1024), (2048, 2048, 1024)],
)
def test_base_size_table(W, H, base):
    assert base_size(W, H) == base


@pytest.mark.parametrize(
    ("wh", "out"),
    [((512, 512), (512, 512)), ((1636, 1351), (576, 480)), ((166, 200), (480, 576)), ((503, 520), (512, 528))],
)
def test_resize_dims_spec_examples(wh, out):
    assert resize_dims(*wh, 512) == out


def test_resize_dims_floor_is_16():
    assert resize_dims(10000, 1, 256) == (25600, 16)  # h * k = 0.0256 -> 0 -> max(16, 0)


def test_pixel_box_floor_ceil_and_clip():
    assert pixel_box((10.5, 20.0, 33.0, 47.2), 64, 64) == (10, 20, 33, 48)
    assert pixel_box((-5.0, -0.5, 70.2, 64.0), 64, 64) == (0, 0, 64, 64)


def test_token_box_r8():
    assert token_box((10.5, 20.0, 33.0, 47.2), 64, 64) == (0, 1, 3, 3)
    assert token_box((16.0, 16.0, 32.0, 32.0), 64, 64) == (1, 1, 2, 2)
    assert token_box((15.9, 16.1, 32.1, 47.9), 64, 64) == (0, 1, 3, 3)
    assert token_box((-20.0, 0.0, 99.0, 64.0), 64, 48) == (0, 0, 4, 3)


@given(
    st.integers(1, 32), st.integers(1, 32),
    st.floats(-100, 700, allow_nan=False), st.floats(-100, 700, allow_nan=False),
    st.floats(0, 600, allow_nan=False), st.floats(0, 600, allow_nan=False),
)
def test_token_box_inside_grid(wt, ht, x1, y1, dw, dh):
    W, H = 16 * wt, 16 * ht
    tx1, ty1, tx2, ty2 = token_box((x1, y1, x1 + dw, y1 + dh), W, H)
    assert 0 <= tx1 <= tx2 <= wt and 0 <= ty1 <= ty2 <= ht
    px1, py1, px2, py2 = pixel_box((x1, y1, x1 + dw, y1 + dh), W, H)
    assert 0 <= px1 <= px2 <= W and 0 <= py1 <= py2 <= H
    # token cells cover the pixel box
    assert tx1 * 16 <= px1 and ty1 * 16 <= py1 and (px2 <= tx2 * 16 or px2 == px1) and (py2 <= ty2 * 16 or py2 == py1)


def test_tight_box_last_index_quirk():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:7] = True  # rows 2..4, cols 3..6
    assert tight_box(m) == (3, 2, 6, 4)
    x1, y1, x2, y2 = tight_box(m)
    assert m[y1:y2, x1:x2].shape == (2, 3)  # the last foreground row and column are dropped
    assert tight_box(np.zeros((4, 4), bool)) is None


def test_fit_instance_hand_checked():
    p = fit_instance((20, 10), (0, 0, 40, 40))  # s = sqrt(1600 / 200) = 2.8284
    assert p == Placement((56, 28), (20, 20))
    assert fit_instance((48, 48), (5, 7, 53, 55)) == Placement((48, 48), (31, 29))


def test_fit_distort_hand_checked():
    assert fit_distort((7, 300), (3, 5, 12, 20)) == Placement((15, 9), (12, 7))


def test_fit_image_hand_checked():
    # frame 200x100 contain-fitted into a 100x100 box -> a = 0.5; fg x 50..150 -> 25..75, y 20..80 -> 35..65
    p = fit_image((100, 200), (50, 20, 150, 80), (0, 0, 100, 100), (200, 200))
    assert p == Placement((30, 50), (50, 50))


def test_fit_image_ratio_binds_in_float32():
    # r = 51/50 (float32 1.0199999809) < bw/w = 1.03; float32 h*s = 102.0 (float64 would give 101)
    p = fit_image((100, 100), (0, 0, 99, 99), (0, 0, 103, 103), (103, 103))
    assert p == Placement((100, 100), (50, 50))
    assert int(100 * float(np.float32(51) / np.float32(50))) == 101  # the float64 path differs


def test_fit_image_no_positive_ratio_uses_one():
    # foreground centred on the frame centre column/row: o = 0 pairs are skipped
    p = fit_image((32, 32), (16, 16, 16, 16), (0, 0, 64, 64), (64, 64))
    assert p.anchor == (32, 32)


def test_place_skips_degenerate_crop(caplog):
    with caplog.at_level(logging.WARNING, logger="ctxgen.layout.geometry"):
        assert place("instance", (64, 64), (5, 5, 5, 9), (0, 0, 16, 16), (64, 64)) is None
        assert place("image", (64, 64), None, (0, 0, 16, 16), (64, 64)) is None
    assert "empty crop" in caplog.text
    with pytest.raises(ValueError, match="fit mode"):
        place("stretch", (64, 64), (0, 0, 9, 9), (0, 0, 16, 16), (64, 64))


def test_paste_centre_on_anchor_and_clip():
    canvas = np.zeros((10, 10, 1), np.float32)
    cmask = np.zeros((10, 10), bool)
    layer = np.arange(16, dtype=np.float32).reshape(4, 4, 1)  # (4, 4, 1)
    lmask = np.ones((4, 4), bool)
    lmask[3, 3] = False
    paste(canvas, cmask, layer, lmask, (0, 0))  # centre (2, 2) -> (0, 0): only layer[2:4, 2:4] lands
    assert canvas[0, 0, 0] == 10 and canvas[0, 1, 0] == 11 and canvas[1, 0, 0] == 14
    assert canvas[1, 1, 0] == 0 and not cmask[1, 1]  # masked-out pixel keeps the canvas
    assert cmask.sum() == 3
    assert paste_window((3, 5), (5, 5), (10, 10)) == ((slice(4, 7), slice(3, 8)), (slice(0, 3), slice(0, 5)))
    assert paste_window((4, 4), (-3, 0), (10, 10)) is None


def _torch_bilinear(a: np.ndarray, oh: int, ow: int) -> np.ndarray:
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()  # (1, C, h, w)
    out = torch.nn.functional.interpolate(t, size=(oh, ow), mode="bilinear", align_corners=False, antialias=False)
    return out[0].permute(1, 2, 0).numpy()  # (oh, ow, C)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 90), st.integers(1, 90), st.integers(0, 2**32 - 1))
def test_bilinear_matches_torch(h, w, oh, ow, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (h, w, 3)).astype(np.float32)
    np.testing.assert_allclose(bilinear_resize(a, oh, ow), _torch_bilinear(a, oh, ow), rtol=0, atol=1e-6)
    m = (rng.random((h, w)) < 0.3).astype(np.float32)  # a binary mask: `> 0` must agree exactly
    ours = bilinear_resize(m, oh, ow)
    assert ours.shape == (oh, ow) and ours.dtype == np.float32
    assert np.array_equal(ours > 0, _torch_bilinear(m[:, :, None], oh, ow)[:, :, 0] > 0)


@pytest.mark.parametrize(("h", "w", "oh", "ow"), [(17, 24, 47, 34), (100, 37, 33, 91), (8, 8, 16, 16), (30, 30, 7, 7)])
def test_bilinear_fixed_cases(h, w, oh, ow):
    a = np.random.default_rng(1).uniform(-1, 1, (h, w, 3)).astype(np.float32)
    np.testing.assert_allclose(bilinear_resize(a, oh, ow), _torch_bilinear(a, oh, ow), rtol=0, atol=1e-6)


def _torch_image_fit(frame_hw, tight, box, canvas_wh):
    """R9 image-fit with the published dtypes: int32 box tensors, float32 ratios, float64 a."""
    torch = pytest.importorskip("torch")
    (h, w), (x1, y1, x2, y2), (W, H) = frame_hw, tight, canvas_wh
    bx1, by1, bx2, by2 = torch.tensor(box, dtype=torch.int32)
    bcx, bcy = (bx1 + bx2) // 2, (by1 + by2) // 2
    cx, cy = w // 2, h // 2
    o = (x1 - cx, y1 - cy, x2 - cx, y2 - cy)
    d = (-bcx, -bcy, W - bcx, H - bcy)
    pos = [d[i] / o[j] for ax in ((0, 2), (1, 3)) for i in ax for j in ax if o[j] != 0 and d[i] / o[j] > 0]
    s = min(min((bx2 - bx1) / w, (by2 - by1) / h), min(pos) if pos else 1.0)
    a = int(h * s) / h
    X1, Y1 = int((x1 - cx) * a + bcx), int((y1 - cy) * a + bcy)
    X2, Y2 = int((x2 - cx) * a + bcx), int((y2 - cy) * a + bcy)
    return Placement((max(1, Y2 - Y1), max(1, X2 - X1)), ((Y1 + Y2) // 2, (X1 + X2) // 2))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_fit_modes_match_published_dtypes(data):
    torch = pytest.importorskip("torch")
    W, H = 16 * data.draw(st.integers(4, 64)), 16 * data.draw(st.integers(4, 64))
    h, w = data.draw(st.integers(16, 400)), data.draw(st.integers(16, 400))
    x1, y1 = data.draw(st.integers(0, w - 2)), data.draw(st.integers(0, h - 2))
    tight = (x1, y1, data.draw(st.integers(x1 + 1, w - 1)), data.draw(st.integers(y1 + 1, h - 1)))
    bx1, by1 = data.draw(st.integers(0, W - 1)), data.draw(st.integers(0, H - 1))
    box = (bx1, by1, data.draw(st.integers(bx1 + 1, W)), data.draw(st.integers(by1 + 1, H)))
    assert fit_image((h, w), tight, box, (W, H)) == _torch_image_fit((h, w), tight, box, (W, H))
    ch, cw = tight[3] - tight[1], tight[2] - tight[0]
    bt = torch.tensor(box, dtype=torch.int32)
    s = math.sqrt((bt[2] - bt[0]) * (bt[3] - bt[1]) / (cw * ch))
    assert fit_instance((ch, cw), box).size == (max(1, int(ch * s)), max(1, int(cw * s)))


def test_fit_contain_hand_checked():
    assert fit_contain((20, 40), (0, 0, 30, 30)) == Placement((15, 30), (15, 15))  # width binds: 20 * 30 // 40
    assert fit_contain((40, 20), (10, 0, 40, 30)) == Placement((30, 15), (15, 25))  # height binds
    assert fit_contain((7, 300), (3, 5, 12, 20)) == Placement((1, 9), (12, 7))  # 7 * 9 // 300 = 0 -> 1 px
    assert place("contain", (64, 64), (0, 0, 40, 20), (0, 0, 30, 30), (64, 64)) == Placement((15, 30), (15, 15))


def _window(p: Placement) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2), end-exclusive, that paste covers: the layer centre (h'//2, w'//2) on the anchor (R9)."""
    top, left = p.anchor[0] - p.size[0] // 2, p.anchor[1] - p.size[1] // 2
    return left, top, left + p.size[1], top + p.size[0]


@settings(max_examples=300, deadline=None)
@given(ch=st.integers(1, 600), cw=st.integers(1, 600), x1=st.integers(-300, 300), y1=st.integers(-300, 300),
       bw=st.integers(1, 600), bh=st.integers(1, 600))
def test_fit_contain_stays_inside_the_box_and_fills_one_axis(ch, cw, x1, y1, bw, bh):
    box = (x1, y1, x1 + bw, y1 + bh)
    p = fit_contain((ch, cw), box)
    wx1, wy1, wx2, wy2 = _window(p)
    assert box[0] <= wx1 and box[1] <= wy1 and wx2 <= box[2] and wy2 <= box[3]  # never past the box
    h, w = p.size  # the largest such size: the binding axis fills the box
    if ch * bw <= bh * cw:  # the width binds; the height keeps the aspect (truncated, at least 1 px)
        assert w == bw and abs(h - max(1.0, ch * bw / cw)) < 1
    else:
        assert h == bh and abs(w - max(1.0, cw * bh / ch)) < 1


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_contain_placed_layer_lies_inside_its_box(data):
    h, w = data.draw(st.integers(2, 80)), data.draw(st.integers(2, 80))
    mask = np.zeros((h, w), bool)
    y1, x1 = data.draw(st.integers(0, h - 2)), data.draw(st.integers(0, w - 2))
    mask[y1:data.draw(st.integers(y1 + 2, h)), x1:data.draw(st.integers(x1 + 2, w))] = True
    bx1, by1 = data.draw(st.integers(0, 100)), data.draw(st.integers(0, 100))
    box = (bx1, by1, bx1 + data.draw(st.integers(1, 100)), by1 + data.draw(st.integers(1, 100)))
    p = place("contain", (h, w), tight_box(mask), box, (256, 256))
    layer = np.ones(p.size, bool)  # the placed layer's full extent, pasted on a canvas larger than any box
    canvas, covered = np.zeros((256, 256, 1), np.float32), np.zeros((256, 256), bool)
    paste(canvas, covered, np.ones((*p.size, 1), np.float32), layer, p.anchor)
    ys, xs = np.nonzero(covered)
    assert box[0] <= xs.min() and xs.max() < box[2] and box[1] <= ys.min() and ys.max() < box[3]
