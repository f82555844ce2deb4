"""Layout preview and render's debug overlays: composite with boxes, captions and grid; references with their token
masks outlined; one vocabulary (labels in stacking order); mask maps with legend and span labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ctxgen.scene.images import RefImage
from ctxgen.layout.compose import build_composition
from ctxgen.core.pictures import PALETTE
from ctxgen.core.pictures import font, text_width
from ctxgen.layout.preview import GAP, header_lines, layer_caption, layout_origin, render_preview
from ctxgen.outputs.overlays import MAP_SIZE, instance_overlay, mask_maps, render_overlays, span_labels, spread
from ctxgen.scene.model import load_scene
from ctxgen.sequence.prepare import prepare_scene
from ctxgen.scene.model import Instance, Scene

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _scene(W: int, H: int, boxes, labels, z) -> Scene:
    insts = tuple(
        Instance(index=i, image=Path(f"/refs/{i}.png"), mask_mode="alpha", mask=None, box=b, fit="instance",
                 label=labels[i], z=z[i])
        for i, b in enumerate(boxes)
    )
    return Scene(source=Path("/scenes/p.yaml"), digest="0" * 64, prompt="p", size=(W, H), seeds=(1,),
                 seed_random=False, steps=28, guidance=3.5, layout=None, ica="official", instances=insts)


def _refs(n: int) -> list[RefImage]:
    refs = []
    for i in range(n):
        rgb = np.full((120, 90 + 30 * i, 3), (60 * i, 120, 200), np.uint8)
        mask = np.zeros(rgb.shape[:2], np.uint8)
        mask[20:100, 10:80] = 255
        refs.append(RefImage(i, rgb, mask))
    return refs


def test_preview_draws_boxes_in_palette_colours():
    boxes = ((16.0, 16.0, 200.0, 180.0), (120.0, 100.0, 250.0, 250.0))
    scene = _scene(256, 256, boxes, ["cat", None], [None, 1])
    plan = build_composition(scene, _refs(2))
    img = render_preview(plan, scene)
    assert img.mode == "RGB" and img.width > 256 + GAP and img.height >= 256
    px = np.asarray(img)
    left, top = layout_origin(plan, scene)  # the composite is pasted below the (wrapped) header
    # bottom edge of box 0 (x 100, y 179) and right edge of box 1 (x 249, y 200) in their colours
    assert tuple(px[top + 179, left + 100]) == PALETTE[0]
    assert tuple(px[top + 200, left + 249]) == PALETTE[1]


def test_preview_user_layout_and_many_refs_extend_the_column():
    boxes = tuple((float(16 * i), 0.0, float(16 * i + 32), 64.0) for i in range(5))
    scene = _scene(128, 64, boxes, [None] * 5, [None] * 5)
    rgba = np.zeros((64, 128, 4), np.uint8)
    rgba[..., 3] = 255
    plan = build_composition(scene, _refs(5), rgba)
    img = render_preview(plan, scene)
    assert img.height > 64 + 2 * GAP + layout_origin(plan, scene)[1]  # five references do not fit in 64 px
    assert img.width == 128 + 192 + 3 * GAP  # the reference column is at least 192 px wide


def test_preview_outlines_foreground_tokens_without_tinting_the_reference():
    scene = _scene(256, 256, ((0.0, 0.0, 128.0, 128.0),), ["a"], [None])
    plan = build_composition(scene, _refs(1))
    img = np.asarray(render_preview(plan, scene)).astype(int)
    left, top = layout_origin(plan, scene)
    panel = img[top + 40:, left + 256 + GAP:]  # below the two caption lines (the colour swatch is excluded)
    outline = (np.abs(panel - np.array(PALETTE[0])).sum(axis=2) == 0).sum()
    assert outline > 50  # the foreground region's outline is drawn in the instance colour
    true = (np.abs(panel - np.array((0, 120, 200))).sum(axis=2) == 0).sum()
    assert true > 1000  # the subject keeps its own colour (0, 120, 200) inside the outline: no tint


def test_one_vocabulary_labels_in_stacking_order():
    boxes = ((16.0, 16.0, 200.0, 180.0), (120.0, 100.0, 250.0, 250.0), (0.0, 0.0, 64.0, 64.0))
    scene = _scene(256, 256, boxes, ["tree", None, "ball"], [2, 0, 1])
    plan = build_composition(scene, _refs(3))
    assert plan.order == (1, 2, 0)  # z decides: #1 at the bottom, tree on top
    text = " ".join(line for line, _ in header_lines(plan, scene, font(14), 2000))
    assert "layers, bottom to top: #1, ball, tree" in text and "about 256x256 px (R4" in text
    assert [layer_caption(plan, scene, i) for i in range(3)] == [
        "tree · layer 3 of 3 · z=2", "#1 · layer 1 of 3 · z=0", "ball · layer 2 of 3 · z=1"]


def test_header_wraps_inside_the_smallest_canvas():
    labels = ["a-rather-long-label", "another-long-label", "and-a-third-one"]
    scene = _scene(256, 256, ((0.0, 0.0, 90.0, 90.0), (90.0, 90.0, 180.0, 180.0), (160.0, 0.0, 256.0, 90.0)),
                   labels, [None] * 3)
    plan = build_composition(scene, _refs(3))
    img = render_preview(plan, scene)
    face = font(14)  # the header's font at 256 px
    lines = header_lines(plan, scene, face, img.width - 2 * GAP)
    assert len(lines) > 3 and all(text_width(face, line) <= img.width - 2 * GAP for line, _ in lines)
    assert ", ".join(labels[i] for i in plan.order) in " ".join(line for line, _ in lines)
    assert layout_origin(plan, scene)[1] >= GAP + len(lines) * 15  # the composite starts below the last line


def test_spread_keeps_labels_apart_and_inside():
    starts = spread([5.0, 6.0, 7.0, 300.0, 509.0], [40, 30, 20, 50, 60], 0, 512)
    ends = [s + w for s, w in zip(starts, [40, 30, 20, 50, 60])]
    assert starts[0] >= 0 and ends[-1] <= 512
    assert all(ends[k] < starts[k + 1] for k in range(4))


@pytest.fixture(scope="module")
def small():
    """The 256 x 256 example prepared (no model), and a fake output: a flat colour."""
    sp = prepare_scene(load_scene(EXAMPLES / "small.yaml"), 32)
    return sp, np.full((256, 256, 3), (10, 200, 30), np.uint8)


def test_instance_overlay_draws_lines_only(small):
    sp, output = small
    img = np.asarray(instance_overlay(sp, output, 1)).astype(int)
    untouched = (np.abs(img - np.array((10, 200, 30))).sum(axis=2) == 0).sum()
    outline = (np.abs(img - np.array(PALETTE[1])).sum(axis=2) == 0).sum()
    assert untouched > 0.9 * 256 * 256  # the output stays visible: only the outline and the box are drawn on it
    assert outline > 100


def test_mask_maps_label_spans_with_instance_names(small):
    sp, _ = small
    assert [name for name, _, _ in span_labels(sp)] == ["text", "main", "layout", "ref0 tree", "ref1 dog", "ref2 ball"]
    img = render_overlays(sp, small[1])["masks"]
    assert img.width > 2 * MAP_SIZE and img.height > MAP_SIZE + 60  # both maps, titles, labels and the legend
    im = np.asarray(mask_maps(sp))
    assert im.std() > 20 and (im == 255).all(axis=2).sum() > 1000 and (im == 0).all(axis=2).sum() > 1000
