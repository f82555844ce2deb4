"""Layout preview: composite with boxes, captions and grid; reference column with token masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ctxgen.scene.images import RefImage
from ctxgen.layout.compose import build_composition
from ctxgen.core.pictures import PALETTE
from ctxgen.layout.preview import GAP, HEAD, render_preview
from ctxgen.scene.model import Instance, Scene


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
    top = GAP + HEAD  # the composite is pasted below the header line
    # bottom edge of box 0 (x 100, y 179) and right edge of box 1 (x 249, y 200) in their colours
    assert tuple(px[top + 179, GAP + 100]) == PALETTE[0]
    assert tuple(px[top + 200, GAP + 249]) == PALETTE[1]


def test_preview_user_layout_and_many_refs_extend_the_column():
    boxes = tuple((float(16 * i), 0.0, float(16 * i + 32), 64.0) for i in range(5))
    scene = _scene(128, 64, boxes, [None] * 5, [None] * 5)
    rgba = np.zeros((64, 128, 4), np.uint8)
    rgba[..., 3] = 255
    plan = build_composition(scene, _refs(5), rgba)
    img = render_preview(plan, scene)
    assert img.height > 64 + 2 * GAP + HEAD  # five reference panels do not fit in 64 px: the column grows
    assert img.width == 128 + 160 + 3 * GAP  # the reference column is at least 160 px wide


def test_preview_tints_foreground_token_cells():
    scene = _scene(256, 256, ((0.0, 0.0, 128.0, 128.0),), ["a"], [None])
    plan = build_composition(scene, _refs(1))
    img = np.asarray(render_preview(plan, scene)).astype(int)
    panel = img[GAP + HEAD + 20:, 256 + 2 * GAP:]  # below the 20-px caption (its colour swatch is excluded)
    colour = np.array(PALETTE[0])
    outline = (np.abs(panel - colour).sum(axis=2) == 0).sum()
    assert outline > 50  # the foreground region's outline is drawn in the instance colour
