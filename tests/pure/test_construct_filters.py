"""The D3/D4 rules of `ctxgen dataset construct` on synthetic boxes and masks (property-tested)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxgen.dataset.construct import filters as f
from ctxgen.dataset.construct.config import EDITS
from ctxgen.vision.features import cosine


def box_mask(h, w, box):
    m = np.zeros((h, w), bool)
    x1, y1, x2, y2 = box
    m[y1:y2, x1:x2] = True
    return m


@settings(max_examples=200, deadline=None)
@given(st.floats(-50, 1100), st.floats(-50, 1100), st.floats(1, 600), st.floats(1, 600))
def test_integer_box_stays_inside_and_keeps_its_size(x, y, bw, bh):
    w = h = 1024
    x1, y1, x2, y2 = f.integer_box((x, y, x + bw, y + bh), w, h)
    assert 0 <= x1 <= x2 <= w - 1 and 0 <= y1 <= y2 <= h - 1
    if 0 <= x and x + bw <= w - 1 and 0 <= y and y + bh <= h - 1:
        assert abs((x2 - x1) - bw) <= 1.5 and abs((y2 - y1) - bh) <= 1.5


def test_tiny_box_rule_needs_both_a_thin_side_and_a_small_area():
    w = h = 1024
    assert f.is_tiny((0, 0, 60, 60), w, h, 1 / 16, 1 / 200)  # both sides under 64 px, area 0.34 %
    assert not f.is_tiny((0, 0, 60, 600), w, h, 1 / 16, 1 / 200)  # thin but 3.4 % of the image
    assert not f.is_tiny((0, 0, 70, 70), w, h, 1 / 16, 1 / 200)  # 0.47 % but no side under 1/16
    assert f.is_tiny((0, 0, 63, 80), w, h, 1 / 16, 1 / 200)  # 63 < 64 and 0.48 % < 0.5 %


def test_select_boxes_drops_tiny_then_nms_then_caps():
    boxes = np.array([[0, 0, 10, 10], [100, 100, 400, 400], [110, 110, 400, 400], [500, 500, 700, 700]]
                     + [[20 + 100 * i, 800, 90 + 100 * i, 1000] for i in range(9)], float)
    scores = np.array([0.9, 0.5, 0.8, 0.7] + [0.6 - 0.01 * i for i in range(9)])
    kept, dropped = f.select_boxes(boxes, scores, 1024, 1024, 1 / 16, 1 / 200, 0.625, 8)
    assert 0 not in kept and 1 not in kept and 2 in kept  # tiny; the weaker of an overlapping pair
    assert kept[:2] == [2, 3] and len(kept) == 8 and dropped == {"tiny-box": 1, "nms": 1, "over-max-boxes": 3}


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 30), st.integers(0, 30), st.integers(1, 30), st.integers(1, 30))
def test_mask_box_and_fit(x, y, bw, bh):
    m = box_mask(64, 64, (x, y, x + bw, y + bh))
    assert f.mask_box(m) == (x, y, x + bw - 1, y + bh - 1)  # last index, as published
    fit = f.fit_ratio(m, (x, y, x + bw, y + bh))
    assert fit == pytest.approx(min((bw - 1) / bw, (bh - 1) / bh))
    assert f.mask_box(np.zeros((8, 8), bool)) is None and f.fit_ratio(np.zeros((8, 8), bool), (0, 0, 4, 4)) == 0


def cand(box, fill=1.0, rfill=1.0, valid=True):
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    mask = box_mask(h, w, (0, 0, max(1, int(w * fill)), max(1, int(h * fill)))) if fill else np.zeros((h, w), bool)
    rmask = box_mask(100, 100, (0, 0, int(100 * rfill), int(100 * rfill))) if rfill else np.zeros((100, 100), bool)
    return f.Candidate(box, mask, rmask, (0, 0, 100, 100) if valid else None)


def test_filter_scene_each_rule_with_its_reason():
    big = [(0, 0, 300, 300), (300, 0, 600, 200), (0, 300, 200, 500), (600, 600, 800, 800)]
    run = lambda cs, **kw: f.filter_scene(cs, 1000, 1000, **{"min_instances": 2, "max_instances": 5,  # noqa: E731
                                                             "min_area": 0.01, "min_fit": 0.6, **kw})
    assert run([cand(big[0])]) == ([], {}, "too-few-instances")
    kept, reasons, why = run([cand(big[0]), cand((0, 0, 50, 50)), cand(big[1])])
    assert why is None and kept == [0, 1 + 1] and reasons == {1: "small-area"}  # 0.25 % < 1 %
    kept, reasons, why = run([cand(big[0]), cand(big[1], fill=0.5), cand(big[2], fill=0),
                              cand(big[3], rfill=0), cand((500, 0, 700, 150), rfill=0.5)])
    assert reasons == {1: "mask-fit", 2: "empty-mask", 3: "empty-repaint-mask", 4: "repaint-mask-fit"}
    assert why == "too-few-instances"
    kept, reasons, _ = run([cand(big[3]), cand(big[0]), cand(big[2]), cand(big[1])], max_instances=2)
    assert kept == [1, 3] and reasons == {0: "over-max-instances", 2: "over-max-instances"}  # largest first


def test_fit_rule_skips_the_repaint_without_valid_box():
    c = cand((0, 0, 300, 300), rfill=0.3, valid=False)
    assert f.instance_reason(c, 0.6) is None


def test_prompt_rules():
    words = ("man", "woman", "child")
    ok = {"prompt": "A man, a woman and two dogs by a car", "nouns": ["man", "woman", "dog", "car"]}
    assert f.prompt_reason(ok, 4, 1, words) is None
    assert f.prompt_reason({**ok, "nouns": ["dog", "car", "cup", "ball"]}, 4, 1, words) == "too-few-humans"
    assert f.prompt_reason({**ok, "nouns": ["men", "dog", "car", "ball"]}, 4, 1, ("man", "men")) is None
    assert f.prompt_reason(ok, 6, 2, words) == "too-few-instances"
    assert f.prompt_reason({"nouns": ["a"]}, 1, 0, words) == "no-prompt"
    assert f.prompt_reason({"prompt": "x", "nouns": []}, 1, 0, words) == "no-nouns"
    flex = {"prompt": "A dog on a pillow", "instance": ["dog", "pillow"], "instance_prompt": ["A dog"]}
    assert f.prompt_reason(flex, 2, 0, words, flexible=True) == "instance-prompt-mismatch"


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2000), st.integers(1, 2000))
def test_repaint_size_is_16_aligned_near_the_area_and_aspect(bw, bh):
    w, h = f.repaint_size(bw, bh, 1024 * 1024)
    assert w % 16 == 0 and h % 16 == 0 and w >= 16 and h >= 16
    if 1 / 8 <= bw / bh <= 8:
        assert w * h <= 1024 * 1024 * 1.01 and w * h >= 1024 * 1024 * 0.85
        assert abs(np.log((w / h) / (bw / bh))) < 0.15


def test_instruction_and_edit_weights():
    assert f.instruction("dog", "Rotate the camera 30 degrees to view slightly from the side of", "") == \
        ("Keep only the dog and remove any other objects. Rotate the camera 30 degrees to view slightly from the "
         "side of the dog.")
    assert f.instruction("The cat", "Place", "on a sandy beach.") == \
        "Keep only The cat and remove any other objects. Place The cat on a sandy beach."
    rng = np.random.default_rng(0)
    picks = [f.choose_edit(u, v, EDITS)[0] for u, v in rng.random((20000, 2))]
    share = picks.count("Place") / len(picks)
    assert abs(share - 0.4) < 0.02 and abs(picks.count("Make") / len(picks) - 0.1) < 0.01
    assert sum(w["weight"] for w in EDITS) == pytest.approx(1.0)


def test_grid_mask_and_masked_mean():
    m = np.zeros((32, 32), bool)
    m[:16, :16] = True
    g = f.grid_mask(m, 4)
    assert g[:2, :2].all() and not g[2:].any() and not g[:, 2:].any()
    feats = np.arange(16 * 2, dtype=float).reshape(16, 2)
    assert np.allclose(f.masked_feature(feats, m), feats[[0, 1, 4, 5]].mean(axis=0))
    assert np.isnan(f.masked_feature(feats, np.zeros((8, 8), bool))).all()
    assert cosine(np.array([1.0, 0]), np.array([2.0, 0])) == pytest.approx(1.0)


def test_match_keep_thresholds_and_overlaps():
    b = lambda box, s: {"bbox": box, "score": s}  # noqa: E731
    face = lambda box, s, aligned=True: {"target": box, "score": s,  # noqa: E731
                                         "aligned_face_bbox": [0, 0, 8, 8] if aligned else None}
    keep, why, _, _ = f.match_keep([b([0, 0, 10, 10], 0.9), b([20, 20, 30, 30], 0.83)], [None, None],
                                   0.82, 0.65, 0.75, 0.5, 2)
    assert keep == [0, 1] and why is None
    keep, why, _, _ = f.match_keep([b([0, 0, 10, 10], 0.9), b([20, 20, 30, 30], 0.81)], [None, None],
                                   0.82, 0.65, 0.75, 0.5, 2)
    assert why == "low-identity"
    keep, why, boxes, _ = f.match_keep([b([0, 0, 10, 10], 0.85), b([0, 0, 10, 11], 0.9)], [None, None],
                                       0.82, 0.65, 0.75, 0.5, 2)
    assert why == "too-few-matches" and boxes[0] is None  # the weaker overlapping box dropped
    keep, why, _, _ = f.match_keep([b([0, 0, 10, 10], 0.9), None, None],
                                   [None, face([20, 20, 30, 30], 0.7), face([40, 40, 50, 50], 0.9, aligned=False)],
                                   0.82, 0.65, 0.75, 0.5, 2)
    assert keep == [0, 1] and why is None  # a face >= 0.65 counts only with its aligned crop
