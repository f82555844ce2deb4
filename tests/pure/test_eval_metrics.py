"""Hand-computed values of the E1-E3 formulas: HSV in OpenCV units, colour check, IoU/NMS, nearest resize,
masked means, answer parsing, aggregation and AVG."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxgen.eval import aggregate
from ctxgen.eval.masks import decode, encode
from ctxgen.eval.metrics import (COLOUR_RANGES, bgr_to_hsv, colour_fraction, cosine, finite_or_zero, masked_mean,
                                 parse_itc, parse_yes_anywhere, resize_linear, resize_nearest)
from ctxgen.eval.tables import text_table
from ctxgen.vision.boxes import iou_many, nms, round_crop_box


def test_hsv_is_in_opencv_units():
    bgr = np.array([[[0, 0, 255], [255, 0, 0], [0, 255, 0], [255, 255, 255], [0, 0, 0], [0, 128, 255]]], np.uint8)
    hsv = bgr_to_hsv(bgr)[0].tolist()
    # red H 0, blue H 120 (240/2), green 60, white S 0 V 255, black all 0, orange H round(30.12/2)=15, S 255
    assert hsv == [[0, 255, 255], [120, 255, 255], [60, 255, 255], [0, 0, 255], [0, 0, 0], [15, 255, 255]]


def test_hsv_matches_opencv_bit_for_bit():
    cv2 = pytest.importorskip("cv2")
    x = np.random.default_rng(0).integers(0, 256, (4096, 1, 3), dtype=np.uint8)
    assert np.array_equal(bgr_to_hsv(x), cv2.cvtColor(x, cv2.COLOR_BGR2HSV))


def test_red_square_in_its_box_passes_and_blue_fails():
    bgr = np.full((8, 8, 3), 127, np.uint8)
    bgr[2:6, 2:6] = (20, 20, 220)  # BGR red
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    assert colour_fraction(bgr, mask, COLOUR_RANGES["red"]) == 1.0
    assert colour_fraction(bgr, mask, COLOUR_RANGES["blue"]) == 0.0
    half = mask.copy()
    half[2:6, 6:8] = True  # 16 red + 8 grey pixels: 2/3 red
    assert colour_fraction(bgr, half, COLOUR_RANGES["red"]) == pytest.approx(16 / 24)
    assert colour_fraction(bgr, np.zeros((8, 8), bool), COLOUR_RANGES["red"]) == 0.0


def test_iou_hand_values_and_empty_detection():
    gt = np.array([0, 0, 10, 10])
    assert iou_many(np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]), gt).tolist() == [1.0, 1 / 3, 0.0]
    assert iou_many(np.zeros((0, 4)), gt).size == 0


def test_nms_drops_overlaps_above_threshold_keeping_the_best():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.4]), 0.8).tolist() == [1, 2]
    assert nms(boxes, np.array([0.5, 0.9, 0.4]), 0.95).tolist() == [1, 0, 2]


def test_crop_box_rounds_half_to_even_then_clips():
    assert round_crop_box(np.array([0.5, 1.5, 2.5, 99.7]), 50, 50) == (0, 2, 2, 50)
    assert round_crop_box(np.array([-3.2, -0.4, 10.5, 11.5]), 50, 50) == (0, 0, 10, 12)


def test_nearest_resize_takes_the_top_left_pixel_of_each_cell():
    src = np.arange(16).reshape(4, 4)
    assert resize_nearest(src, 2, 2).tolist() == [[0, 2], [8, 10]]  # not the cell centres (5, 7, 13, 15)
    assert resize_nearest(np.arange(3).reshape(1, 3), 2, 1).tolist() == [[0, 1]]  # floor(1 * 1.5) = 1


def test_nearest_and_linear_resize_match_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    m = (rng.random((37, 53)) > 0.5).astype(np.float32)
    assert np.array_equal(resize_nearest(m, 16, 16), cv2.resize(m, (16, 16), interpolation=cv2.INTER_NEAREST))
    img = rng.integers(0, 256, (61, 47, 3), dtype=np.uint8)
    diff = np.abs(resize_linear(img, 128, 128).astype(int) - cv2.resize(img, (128, 128)).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_masked_mean_pools_under_the_mask_and_is_nan_when_empty():
    f = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0]])
    assert masked_mean(f, np.array([True, False, True])).tolist() == [3.0, 2.0]
    out = masked_mean(f, np.zeros(3, bool))
    assert np.isnan(out).all() and finite_or_zero(cosine(out, f[0])) == (0.0, True)


def test_answer_parsing_rules_differ_per_benchmark():
    assert parse_itc("  Yes, a dog.") == 1.0 and parse_itc("The answer is yes") == 0.0 and parse_itc("no") == 0.0
    assert parse_yes_anywhere("The answer is Yes") == 1.0 and parse_yes_anywhere("No") == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=8, max_size=8))
def test_iou_is_symmetric_and_bounded(v):
    a = np.array([min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]) + 1, max(v[1], v[3]) + 1])
    b = np.array([min(v[4], v[6]), min(v[5], v[7]), max(v[4], v[6]) + 1, max(v[5], v[7]) + 1])
    x, y = iou_many(a[None], b)[0], iou_many(b[None], a)[0]
    assert x == pytest.approx(y) and 0.0 <= x <= 1.0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_mask_run_lengths_round_trip(seed):
    m = np.random.default_rng(seed).random((64, 64)) > 0.5
    assert np.array_equal(decode(encode(m)), m)


def _lamic(n_refs, aes, itc, ids, ips):
    return {"n_refs": n_refs, "aes": aes, "itc": itc, "ids": [{"score": s} for s in ids],
            "ips": [{"score": s} for s in ips]}


def test_lamic_aggregation_pools_references_and_scales_avg():
    recs = [_lamic(2, 5.0, 1.0, [0.5], [0.8]), _lamic(3, 6.0, 0.5, [], [0.2, 0.4]), _lamic(7, 4.0, 0.0, [], [0.6])]
    s = aggregate.lamic_summary(recs + [{"error": "x", "n_refs": 2}])
    fewer = s["2-3"]
    assert fewer["AES"] == pytest.approx(55.0) and fewer["ITC"] == pytest.approx(75.0)
    assert fewer["IDS"] == pytest.approx(50.0) and fewer["IPS"] == pytest.approx(100 * 1.4 / 3)  # per reference
    assert fewer["AVG"] == pytest.approx((55.0 + 75.0 + 50.0 + 100 * 1.4 / 3) / 4)
    assert s["4+"]["IDS"] == 0.0 and s["4+"]["AVG"] == pytest.approx((40 + 0 + 0 + 60) / 4)  # AVG always /4
    assert set(s) == {"all", "2", "3", "6", "2-3", "4+"}


def test_cocomig_aggregation_by_level():
    ok = {"success": True, "miou": 0.9}
    pos = {"success": False, "miou": 0.3}  # a wrong position contributes its IoU
    col = {"success": False, "miou": 0.0}  # the wrong colour contributes 0
    recs = [{"instances": [ok, ok], "gc": 30.0}, {"instances": [ok, pos, col], "gc": 20.0}]
    s = aggregate.cocomig_summary(recs)
    assert s["levels"]["L2"]["SR"] == 100.0 and s["levels"]["L3"]["SR"] == 0.0
    assert s["all"]["I-SR"] == pytest.approx(60.0) and s["all"]["mIoU"] == pytest.approx(100 * 3.0 / 5)
    assert s["all"]["G-C"] == 25.0 and s["all"]["L-C"] is None
    assert "L2" in text_table("cocomig", s) and "60.00" in text_table("cocomig", s)


def test_layoutsam_aggregation_counts_boxes():
    r = {"regions": [{"spatial": 1.0, "colour": 1.0, "texture": 0.0, "shape": 1.0},
                     {"spatial": 0.0, "colour": 0.0, "texture": 0.0, "shape": 0.0}], "clip": 0.25, "pick": 21.0}
    s = aggregate.layoutsam_summary([r, {"regions": [{"spatial": 1.0, "colour": 1.0, "texture": 1.0, "shape": 1.0}],
                                         "clip": 0.35, "pick": 23.0}])["all"]
    assert s["spatial"] == pytest.approx(200 / 3) and s["texture"] == pytest.approx(100 / 3)
    assert s["CLIP"] == pytest.approx(30.0) and s["Pick"] == pytest.approx(22.0) and not math.isnan(s["shape"])
