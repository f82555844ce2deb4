"""The fit pictures of docs/fits.md (R9): drawn by the compositor, equal to the committed files, and each showing
the property it illustrates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ctxgen.layout import fit_pictures as fp

DOCS = Path(__file__).resolve().parents[2] / "docs" / "fits"
REGENERATE = "python3 -m ctxgen.layout.fit_pictures docs/fits"


@pytest.fixture(scope="module")
def pictures() -> dict[str, Image.Image]:
    return fp.fit_pictures()


@pytest.mark.parametrize("stem", ["reference", *fp.FITS])
def test_committed_picture_is_what_the_compositor_draws(pictures, stem):
    """Pixel for pixel (the PNG bytes depend on the zlib build, the pixels do not): docs never drift."""
    committed = Image.open(DOCS / f"{stem}.png")
    drawn = pictures[stem]
    assert (committed.mode, committed.size) == (drawn.mode, drawn.size), f"regenerate with {REGENERATE}"
    assert np.array_equal(np.asarray(committed), np.asarray(drawn)), f"docs/fits/{stem}.png is stale; {REGENERATE}"
    assert drawn.width == fp.CANVAS[0] and drawn.height < 260  # small enough for a docs page


def test_every_fit_has_a_picture_and_the_docs_show_it(pictures):
    text = (DOCS.parent / "fits.md").read_text(encoding="utf-8")
    for stem in pictures:
        assert f"fits/{stem}.png" in text


def test_instance_fit_overflows_the_box_on_one_axis():
    x1, y1, x2, y2 = fp.layer_extent(fp.placed("instance"))
    bx1, by1, bx2, by2 = fp.BOX
    assert x1 < bx1 and x2 > bx2  # the wide reference keeps the box's area: wider than the box
    assert by1 <= y1 and y2 <= by2  # and lower, so it stays inside vertically


def test_contain_stays_inside_and_fills_the_width():
    x1, y1, x2, y2 = fp.layer_extent(fp.placed("contain"))
    bx1, by1, bx2, by2 = fp.BOX
    assert (x1, x2) == (bx1, bx2) and by1 < y1 and y2 < by2


def test_distort_fills_the_box_exactly():
    layer = fp.placed("distort")
    assert layer.mask.shape == (fp.BOX[3] - fp.BOX[1], fp.BOX[2] - fp.BOX[0])
    assert fp.layer_extent(layer) == fp.BOX


def test_image_fit_keeps_the_frame_margins_inside_the_box():
    x1, y1, x2, y2 = fp.layer_extent(fp.placed("image"))
    bx1, by1, bx2, by2 = fp.BOX
    inside = bx1 <= x1 and by1 <= y1 and x2 <= bx2 and y2 <= by2
    contain = fp.layer_extent(fp.placed("contain"))
    assert inside and x2 - x1 < contain[2] - contain[0]  # the transparent margins take part of the box


def test_the_box_is_outlined_and_the_canvas_is_the_layout_grey(pictures):
    px = np.asarray(pictures["contain"])
    bx1, by1, bx2, by2 = fp.BOX
    assert tuple(px[by1, (bx1 + bx2) // 2]) == fp.BOX_COLOUR and tuple(px[by2 - 1, bx1 + 3]) == fp.BOX_COLOUR
    assert tuple(px[5, 5]) == (128, 128, 128)  # R10: empty canvas is 0.0 in [-1, 1]
