"""T2 without torch: the published training-time reference resize, one example through the layout and sequence
stages, keyed augmentation draws, and the data order (epochs, subset mix)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from ctxgen.dataset.record import ImageData
from ctxgen.dataset.synthetic import synthetic_record
from ctxgen.layout.compose import canvas_mask, place_layer, stack_layers
from ctxgen.layout.geometry import drawn_box
from ctxgen.sequence.prompt import wrap_prompt
from ctxgen.train.config import load_config
from ctxgen.train.data import ExampleSource
from ctxgen.train.examples import ExampleOptions, _variant, build_example
from ctxgen.train.randomness import Choices, draw_choices, keyed_rng
from ctxgen.train.references import area_size, floor16, training_reference
from tests.train_helpers import train_root, write_config  # noqa: F401  (fixture)

OPTS = ExampleOptions((128, 128), 64, 16)


def test_area_size_rounds_and_vae_side_floors_to_16():
    assert area_size(512, 512, 512) == (512, 512)
    assert area_size(100, 50, 64) == (91, 45)  # k = sqrt(4096 / 5000): 90.51 and 45.26, rounded
    assert area_size(1636, 1351, 512) == (563, 465)
    assert (floor16(563), floor16(465), floor16(9)) == (560, 464, 16)


def test_training_reference_two_sizes():
    rgb = np.full((60, 120, 3), 200, np.uint8)
    mask = np.zeros((60, 120), np.uint8)
    mask[10:50, 20:100] = 255
    ref = training_reference(0, rgb, mask, 64)
    assert ref.raw.shape == (45, 91, 3) and ref.mask.shape == (45, 91)  # area 64^2, unfloored: the layout side
    assert ref.prepared.size == (80, 32) and ref.prepared.grid == (2, 5)  # floored to 16: the VAE side
    assert ref.prepared.pixels.dtype == np.float32
    assert np.all(ref.prepared.pixels[~ref.prepared.mask] == 0.0)  # R6: background 0.0
    assert ref.prepared.token_mask.any() and ref.raw.max() == pytest.approx(200 / 255 * 2 - 1)


def test_example_layout_is_placed_from_the_unfloored_reference():
    rec = synthetic_record(0, seed=0, size=256)  # basic subset, 256x192 target
    choices = Choices(False, ("plain",) * len(rec.instances), 7)
    ex = build_example(rec, choices, OPTS)
    W, H = OPTS.canvas
    fy = H / 192
    refs, layers = [], []
    for k, inst in enumerate(rec.instances):
        from ctxgen.train.references import decode_reference

        rgb, alpha = decode_reference(inst.image, inst.mask, "t")
        ref = training_reference(k, rgb, alpha, OPTS.reference_area)
        refs.append(ref)
        box = tuple(v * fy for v in inst.box)  # T2: both axes by the height factor
        layers.append(place_layer(ref.raw, ref.mask, drawn_box(box), "image", (W, H)))
    masks = [canvas_mask(layer, (W, H)) for layer in layers]
    np.testing.assert_array_equal(ex.composition.image, stack_layers(layers, ex.composition.order, (W, H)))
    np.testing.assert_array_equal(np.stack(ex.composition.layer_masks), np.stack(masks))
    assert [r.size for r in ex.composition.refs] == [r.prepared.size for r in refs]
    x1, y1, x2, y2 = (v * fy for v in rec.instances[0].box)
    assert ex.composition.boxes[0] == (math.floor(x1), math.floor(y1), min(W, math.ceil(x2)), min(H, math.ceil(y2)))
    assert ex.target().shape == (128, 128, 3) and ex.prompt == wrap_prompt(rec.prompt)
    assert ex.tokens.seq_len == 16 + 2 * 64 + sum(r.prepared.grid[0] * r.prepared.grid[1] for r in refs)


def test_box_scale_axes_and_height_differ_for_non_square_targets():
    rec = synthetic_record(0, seed=0, size=256)
    choices = Choices(False, ("plain",) * len(rec.instances), 7)
    height = build_example(rec, choices, OPTS)
    axes = build_example(rec, choices, replace(OPTS, box_scale="axes"))
    x1 = rec.instances[0].box[0]
    assert height.composition.boxes[0][0] == int(x1 * 128 / 192) and axes.composition.boxes[0][0] == int(x1 / 2)


def test_variants_pick_image_and_fit():
    basic = synthetic_record(0, seed=0, size=256)
    inst = basic.instances[0]
    assert _variant(inst, "plain") == (inst.image, inst.mask, "image")
    assert _variant(inst, "enhanced") == (inst.enhanced_image, inst.enhanced_mask, "instance")  # has a valid box
    assert _variant(replace(inst, valid_box=None), "enhanced")[2] == "image"
    face = synthetic_record(1, seed=0, size=256).instances[0]
    assert face.kind == "face" and _variant(face, "face") == (face.face_image, None, "image")


def test_draws_are_keyed_and_follow_the_probabilities(train_root):
    data = load_config(write_config(train_root), "sft").doc.data
    basic, composite = synthetic_record(0, 0, 256), synthetic_record(1, 0, 256)
    assert draw_choices(basic, data, 0, 3, 1) == draw_choices(basic, data, 0, 3, 1)
    draws = [draw_choices(basic, data, 0, step, 0) for step in range(400)]
    assert 0.15 < np.mean([d.drop_caption for d in draws]) < 0.25  # p = 0.2 for basic
    assert 0.4 < np.mean([d.variants[0] == "enhanced" for d in draws]) < 0.6  # p = 0.5
    assert len({d.layer_seed for d in draws}) == 400
    comp = [draw_choices(composite, data, 0, step, 0) for step in range(200)]
    assert not any(d.drop_caption for d in comp)  # composite captions are never dropped
    assert 0.65 < np.mean([d.variants[0] == "face" for d in comp]) < 0.85  # p = 0.75
    fixed = data.model_copy(update={"random_layer_order": False})
    assert draw_choices(composite, fixed, 0, 5, 0).layer_seed == (composite.seed or 0)


def test_dropped_caption_keeps_the_template():
    rec = synthetic_record(2, seed=0, size=256)
    ex = build_example(rec, Choices(True, ("plain",) * len(rec.instances), 1), OPTS)
    assert ex.prompt == wrap_prompt("")


def test_unmixed_order_is_the_reader_stream(train_root):
    source = ExampleSource(train_root / "data", seed=3)
    stream = [rec.id for _, rec in itertools.islice(source.reader.stream(3), 14)]
    assert [source.record(n).id for n in range(14)] == stream
    assert source.cursor(7).to_json() == '{"epoch": 1, "position": 1}'


def test_mix_draws_subsets_by_weight_and_covers_each_subset(train_root):
    source = ExampleSource(train_root / "data", seed=0, mix={"basic": 15, "composite": 1})
    subsets = np.array(["basic", "composite"] * 3)
    picks = [source.index_of(n) for n in range(5000)]
    share = np.mean(subsets[picks] == "composite")
    assert 1 / 16 - 0.015 < share < 1 / 16 + 0.015
    basic_seen = [p for p in picks if subsets[p] == "basic"][:3]
    assert sorted(basic_seen) == [0, 2, 4]  # a subset's epoch visits each of its records once
    again = ExampleSource(train_root / "data", seed=0, mix={"basic": 15, "composite": 1})
    assert [again.index_of(n) for n in (4999, 17, 4098)] == [picks[4999], picks[17], picks[4098]]
    with pytest.raises(Exception, match="no record of subset 'complex'"):
        ExampleSource(train_root / "data", seed=0, mix={"basic": 1, "complex": 1})


def test_keyed_streams_are_stable():
    first = keyed_rng(0, 1, 2, 3).integers(1000, size=3).tolist()
    assert keyed_rng(0, 1, 2, 3).integers(1000, size=3).tolist() == first
    assert keyed_rng(0, 1, 2, 3).random() != keyed_rng(0, 1, 3, 2).random()
    assert isinstance(ImageData(b"", "x").name, str)
