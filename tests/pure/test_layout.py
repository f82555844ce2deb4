"""Layout stage (R5-R12): reference preparation, placement, compositing, user layouts, PIL export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ctxgen.scene.images import RefImage
from ctxgen.layout.compose import build_composition, layout_to_pil, place_layer, prepare_reference, user_layout_image
from ctxgen.scene.model import Instance, Scene


def unit(*rgb: int) -> np.ndarray:
    """R6 value of a uint8 colour, computed like diffusers (float32)."""
    return np.array(rgb, np.float32) / np.float32(255.0) * np.float32(2.0) - np.float32(1.0)


def make_ref(index: int, size: int, colour: tuple[int, int, int], fg: tuple[int, int, int, int]) -> RefImage:
    """A size x size reference of one colour whose mask is 255 on rows/cols fg=(y0, x0, y1, x1) inclusive."""
    rgb = np.empty((size, size, 3), np.uint8)
    rgb[:] = colour
    mask = np.zeros((size, size), np.uint8)
    mask[fg[0]:fg[2] + 1, fg[1]:fg[3] + 1] = 255
    return RefImage(index=index, rgb=rgb, mask=mask)


def make_scene(boxes, fits=None, z=None, size=(64, 64), seed=0, labels=None) -> Scene:
    n = len(boxes)
    fits = fits or ["instance"] * n
    z = z or [None] * n
    labels = labels or [None] * n
    insts = tuple(
        Instance(index=i, image=Path(f"/refs/{i}.png"), mask_mode="alpha", mask=None, box=tuple(map(float, b)),
                 fit=fits[i], label=labels[i], z=z[i])
        for i, b in enumerate(boxes)
    )
    return Scene(source=Path("/scenes/t.yaml"), digest="0" * 64, prompt="p", size=size, seeds=(seed,),
                 seed_random=False, steps=28, guidance=3.5, layout=None, ica="official", instances=insts)


def test_prepare_reference_sizes_and_token_grid():
    ref = RefImage(0, np.zeros((256, 512, 3), np.uint8), np.full((256, 512), 255, np.uint8))
    prep, raw = prepare_reference(ref, 512)  # R5: 512x256 -> 736x368
    assert prep.size == (736, 368) and prep.grid == (23, 46)
    assert prep.pixels.shape == (368, 736, 3) and prep.pixels.dtype == np.float32
    assert raw.shape == (368, 736, 3) and prep.mask.shape == (368, 736)
    assert prep.token_mask.all()


def test_prepare_reference_pixels_mask_threshold_and_token_mask():
    rgb = np.empty((256, 256, 3), np.uint8)
    rgb[:] = (200, 100, 50)
    mask = np.zeros((256, 256), np.uint8)
    mask[:, :64] = 127  # below the R6 threshold
    mask[:, 64:128] = 128  # at the threshold
    prep, raw = prepare_reference(RefImage(3, rgb, mask), 256)  # base 256: 256x256 stays (no resampling)
    assert prep.index == 3
    assert not prep.mask[:, :64].any() and prep.mask[:, 64:128].all() and not prep.mask[:, 128:].any()
    np.testing.assert_array_equal(raw[0, 0], unit(200, 100, 50))
    np.testing.assert_array_equal(prep.pixels[5, 100], unit(200, 100, 50))
    assert (prep.pixels[:, :64] == 0).all() and (prep.pixels[:, 128:] == 0).all()
    # R7: BICUBIC to 16x16 then > 0: the 127s count too (token mask is not binarized at 128), and it
    # dilates by one column past the foreground (bicubic ringing)
    assert prep.token_mask.shape == (16, 16)
    assert prep.token_mask[:, :8].all() and prep.token_mask[:, 8].all() and not prep.token_mask[:, 10:].any()


def test_place_layer_uses_raw_pixels_under_the_resized_mask():
    rgb = np.zeros((256, 256, 3), np.uint8)
    rgb[:] = (255, 0, 0)  # raw red everywhere, also outside the mask
    mask = np.zeros((256, 256), bool)
    mask[0:11, 0:11] = True  # tight box (0, 0, 10, 10): crop [0:10, 0:10]
    mask[5:7, 5:7] = False  # a 2x2 hole (a 1-pixel hole would vanish: bilinear upscaling then `> 0` dilates)
    layer = place_layer(unit(*rgb[0, 0])[None, None] * np.ones((256, 256, 1), np.float32), mask,
                        (0, 0, 40, 40), "distort", (64, 64))
    assert layer.image.shape == (40, 40, 3) and layer.anchor == (20, 20)
    assert (layer.image[layer.mask] == np.array([1.0, -1.0, -1.0], np.float32)).all()  # raw, not mask-blended
    # output rows/cols 22..25 sample source 5.125..5.875: all four taps in the hole
    assert (~layer.mask).sum() == 16 and not layer.mask[22:26, 22:26].any()


def test_place_layer_skips_one_pixel_wide_foreground(caplog):
    mask = np.zeros((64, 64), bool)
    mask[10:30, 7] = True  # one column: crop width 0
    assert place_layer(np.zeros((64, 64, 3), np.float32), mask, (0, 0, 32, 32), "instance", (64, 64)) is None
    assert "empty crop" in caplog.text


def _two_instance_scene(z=None):
    # A: 41x41 foreground -> 40x40 crop into box 40x40 (scale 1); B: 17x17 -> 16x16 crop, box inside A
    refs = [make_ref(0, 256, (200, 100, 50), (0, 0, 40, 40)), make_ref(1, 256, (10, 20, 240), (100, 100, 116, 116))]
    scene = make_scene([(0, 0, 40, 40), (12, 12, 28, 28)], fits=["instance", "distort"], z=z)
    return scene, refs


def test_compositor_two_instances_exact():
    scene, refs = _two_instance_scene()
    plan = build_composition(scene, refs)
    assert plan.size == (64, 64) and plan.base == 256
    assert plan.order == (0, 1)  # B is contained in A -> drawn on top
    assert plan.boxes == ((0, 0, 40, 40), (12, 12, 28, 28))
    assert plan.token_boxes == ((0, 0, 3, 3), (0, 0, 2, 2))
    a_mask, b_mask = plan.layer_masks
    assert a_mask[0:40, 0:40].all() and a_mask.sum() == 1600
    assert b_mask[12:28, 12:28].all() and b_mask.sum() == 256
    np.testing.assert_array_equal(plan.image[20, 20], unit(10, 20, 240))  # top layer covers the bottom
    np.testing.assert_array_equal(plan.image[5, 5], unit(200, 100, 50))
    np.testing.assert_array_equal(plan.image[39, 39], unit(200, 100, 50))
    assert (plan.image[40:, :] == 0).all() and (plan.image[:, 40:] == 0).all()  # mid-grey background
    assert plan.image.dtype == np.float32 and plan.image.shape == (64, 64, 3)
    assert [r.index for r in plan.refs] == [0, 1]


def test_compositor_z_puts_contained_below():
    scene, refs = _two_instance_scene(z=[None, -1])
    plan = build_composition(scene, refs)
    assert plan.order == (1, 0)
    np.testing.assert_array_equal(plan.image[20, 20], unit(200, 100, 50))


def test_build_layout_is_deterministic_per_seed():
    refs = [make_ref(i, 256, (40 * i, 90, 160), (10, 10, 200, 200)) for i in range(3)]
    scene = make_scene([(0, 0, 30, 30), (34, 0, 64, 30), (0, 34, 30, 64)], seed=11)
    a, b = build_composition(scene, refs), build_composition(scene, refs)
    assert a.order == b.order and np.array_equal(a.image, b.image)


def test_user_layout_thresholds_and_skips_placement():
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:, :32, 3] = 127
    rgba[:, 32:, 3] = 128
    scene, refs = _two_instance_scene()
    plan = build_composition(scene, refs, rgba)
    assert plan.order == () and not any(m.any() for m in plan.layer_masks)
    assert (plan.image[:, :32] == 0).all()
    np.testing.assert_array_equal(plan.image[7, 40], unit(10, 20, 30))
    assert plan.boxes == ((0, 0, 40, 40), (12, 12, 28, 28)) and len(plan.refs) == 2


def test_user_layout_resizes_alpha_nearest():
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[::2, ::2, 3] = 255  # a one-pixel checkerboard of opaque pixels
    out = user_layout_image(rgba, (64, 64))
    keep = (out != 0).any(axis=2)
    expected = np.zeros((64, 64), bool)
    expected[np.ix_(np.arange(64) // 2 % 2 == 0, np.arange(64) // 2 % 2 == 0)] = True
    np.testing.assert_array_equal(keep, expected)
    with pytest.raises(ValueError, match="uint8"):
        user_layout_image(np.zeros((8, 8, 3), np.uint8), (64, 64))


def test_build_layout_rejects_mismatched_refs():
    scene, refs = _two_instance_scene()
    with pytest.raises(ValueError, match="do not match"):
        build_composition(scene, refs[:1])


def test_layout_to_pil_rounding():
    scene, refs = _two_instance_scene()
    plan = build_composition(scene, refs)
    img = np.zeros((64, 64, 3), np.float32)
    img[0, 0:5, 0] = [-1.0, 1.0, 0.0, 2.0, -0.5]
    from dataclasses import replace

    pil = layout_to_pil(replace(plan, image=img))
    assert pil.mode == "RGB" and pil.size == (64, 64)
    assert np.asarray(pil)[0, 0:5, 0].tolist() == [0, 255, 128, 255, 64]


def test_build_layout_six_refs_1024_places_every_layer():
    rng = np.random.default_rng(0)
    refs, boxes = [], []
    for i in range(6):
        h, w = int(rng.integers(200, 900)), int(rng.integers(200, 900))
        yy, xx = np.mgrid[0:h, 0:w]
        mask = ((yy - h / 2) ** 2 / (0.4 * h) ** 2 + (xx - w / 2) ** 2 / (0.4 * w) ** 2 <= 1).astype(np.uint8) * 255
        refs.append(RefImage(i, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), mask))
        x, y = int(rng.integers(0, 600)), int(rng.integers(0, 600))
        boxes.append((x, y, x + int(rng.integers(150, 424)), y + int(rng.integers(150, 424))))
    scene = make_scene(boxes, fits=["instance", "image", "distort"] * 2, size=(1024, 1024))
    plan = build_composition(scene, refs)
    assert sorted(plan.order) == list(range(6)) and all(m.any() for m in plan.layer_masks)


def test_build_layout_skips_degenerate_instance_with_warning(caplog):
    thin = make_ref(1, 256, (0, 255, 0), (10, 50, 200, 50))  # one column of foreground: crop width 0
    scene, refs = _two_instance_scene()
    plan = build_composition(scene, [refs[0], thin])
    assert not plan.layer_masks[1].any() and plan.layer_masks[0].sum() == 1600
    assert sorted(plan.order) == [0, 1] and plan.order[-1] == 1  # the empty layer goes last
    np.testing.assert_array_equal(plan.image[20, 20], unit(200, 100, 50))
    assert "instance 1 (1.png)" in caplog.text


def test_box_crossing_the_canvas_edge_places_the_reference_as_drawn(workdir, write):
    """R9/R8: placement uses the box as drawn, the canvas clips the pasted pixels; the token box is clipped."""
    from PIL import Image

    from ctxgen.scene.images import read_references
    from ctxgen.scene.model import load_scene

    halves = np.zeros((64, 128, 4), np.uint8)
    halves[:, :64] = (255, 0, 0, 255)  # left half red
    halves[:, 64:] = (0, 0, 255, 255)  # right half blue
    Image.fromarray(halves, "RGBA").save(workdir / "refs/halves.png")
    scene = load_scene(write("prompt: p\nsize: [256, 256]\nseed: 1\ninstances:\n  - image: refs/halves.png\n"
                             "    box: [128, 64, 384, 192]\n    fit: distort\n"))
    inst = scene.instances[0]
    assert inst.box == (128.0, 64.0, 256.0, 192.0) and inst.placement_box == (128.0, 64.0, 384.0, 192.0)
    comp = build_composition(scene, read_references(scene))
    assert comp.boxes == ((128, 64, 256, 192),) and comp.token_boxes == ((8, 4, 16, 12),)
    visible = layout_to_pil(comp).crop((128, 64, 256, 192))  # the part of the 256x128 reference on the canvas
    rgb = np.asarray(visible, dtype=np.int16)  # (128, 128, 3)
    assert (rgb[..., 0] > 200).all() and (rgb[..., 2] < 50).all()  # only the red left half is visible
