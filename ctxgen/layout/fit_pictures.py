"""The pictures of docs/fits.md: one reference placed in one box by each fit mode, drawn by the real compositor (R9).

Torch-free. `python3 -m ctxgen.layout.fit_pictures [FOLDER]` writes FOLDER/<fit>.png and FOLDER/reference.png
(default docs/fits); tests/pure/test_fits.py checks that the committed pictures equal what this module draws.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ctxgen.core.fsio import write_png
from ctxgen.core.pictures import BG, FG, font, line_height, to_uint8
from ctxgen.layout.compose import PlacedLayer, place_layer, prepare_reference, stack_layers
from ctxgen.layout.geometry import IntBox, base_size
from ctxgen.scene.images import RefImage

FITS = ("instance", "distort", "image", "contain")
CANVAS = (240, 176)  # W, H of the drawn layout
BOX: IntBox = (72, 40, 168, 136)  # a 96 x 96 box in the middle of the canvas
BOX_COLOUR = (255, 214, 10)
CAPTIONS = {
    "instance": ("instance (default)", "box's area, aspect kept: may overflow"),
    "distort": ("distort", "stretched to exactly the box"),
    "image": ("image", "whole frame fits the box, margins kept"),
    "contain": ("contain (ctxgen, untrained)", "aspect kept, inside the box"),
}


def reference() -> RefImage:
    """A wide (about 2.3:1) toy car, off-centre in a 4:3 RGBA frame with transparent margins."""
    im = Image.new("RGBA", (200, 150), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.rounded_rectangle([14, 70, 176, 112], radius=12, fill=(0, 150, 160, 255))  # body
    draw.polygon([(48, 70), (68, 42), (128, 42), (150, 70)], fill=(0, 120, 130, 255))  # cabin
    draw.polygon([(58, 68), (72, 48), (96, 48), (96, 68)], fill=(200, 235, 245, 255))  # windows
    draw.polygon([(102, 68), (102, 48), (124, 48), (140, 68)], fill=(200, 235, 245, 255))
    draw.rectangle([14, 84, 176, 90], fill=(250, 200, 40, 255))  # stripe
    draw.rectangle([166, 76, 176, 84], fill=(255, 245, 180, 255))  # headlight
    for cx in (52, 140):  # wheels
        draw.ellipse([cx - 17, 96, cx + 17, 130], fill=(30, 30, 30, 255))
        draw.ellipse([cx - 7, 106, cx + 7, 120], fill=(170, 170, 170, 255))
    rgba = np.asarray(im)  # (150, 200, 4)
    return RefImage(0, np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3]))


def placed(fit: str) -> PlacedLayer:
    """The reference after R5 (resized for this canvas's base size), placed in BOX by `fit` (R9)."""
    prep, raw = prepare_reference(reference(), base_size(*CANVAS))
    layer = place_layer(raw, prep.mask, BOX, fit, CANVAS, "the fit picture's reference")
    if layer is None:
        raise ValueError("the fit picture's reference has no foreground")
    return layer


def layer_extent(layer: PlacedLayer) -> IntBox:
    """(x1, y1, x2, y2), end-exclusive, of the layer's foreground on the canvas (before the canvas clips it)."""
    rows, cols = np.flatnonzero(layer.mask.any(axis=1)), np.flatnonzero(layer.mask.any(axis=0))
    top = layer.anchor[0] - layer.mask.shape[0] // 2
    left = layer.anchor[1] - layer.mask.shape[1] // 2
    return left + int(cols[0]), top + int(rows[0]), left + int(cols[-1]) + 1, top + int(rows[-1]) + 1


def draw_fit(fit: str) -> Image.Image:
    """The layout the model would see for `fit` (mid-grey canvas, R10), the box outlined, a two-line caption."""
    W, H = CANVAS
    layout = Image.fromarray(to_uint8(stack_layers([placed(fit)], [0], CANVAS)), "RGB")  # (H, W, 3)
    ImageDraw.Draw(layout).rectangle([BOX[0], BOX[1], BOX[2] - 1, BOX[3] - 1], outline=BOX_COLOUR, width=1)
    title, note = CAPTIONS[fit]
    return _captioned(layout, f"fit: {title}", note)


def _captioned(picture: Image.Image, title: str, note: str) -> Image.Image:
    """The picture above a dark strip holding a title line and a note line."""
    bold, plain = font(14), font(12)
    W, H = picture.size
    out = Image.new("RGB", (W, H + line_height(bold) + line_height(plain) + 8), BG)
    out.paste(picture, (0, 0))
    draw = ImageDraw.Draw(out)
    draw.text((6, H + 4), title, font=bold, fill=FG)
    draw.text((6, H + 4 + line_height(bold)), note, font=plain, fill=(180, 184, 190))
    return out


def draw_reference() -> Image.Image:
    """The reference itself: its RGBA frame over a checkerboard (transparent = checkered), centred on the canvas."""
    ref = reference()
    h, w = ref.mask.shape
    yy, xx = np.indices((h, w))  # (2, h, w)
    board = np.where(((yy // 10 + xx // 10) % 2 == 0)[:, :, None], 205, 160).astype(np.uint8)  # (h, w, 1)
    alpha = (ref.mask.astype(np.float32) / 255.0)[:, :, None]  # (h, w, 1)
    frame = np.rint(alpha * ref.rgb + (1 - alpha) * board).astype(np.uint8)  # (h, w, 3)
    canvas = Image.new("RGB", CANVAS, (128, 128, 128))
    canvas.paste(Image.fromarray(frame, "RGB"), ((CANVAS[0] - w) // 2, (CANVAS[1] - h) // 2))
    return _captioned(canvas, "the reference", f"{w}x{h} RGBA; checkered = transparent")


def fit_pictures() -> dict[str, Image.Image]:
    """The reference and every fit's picture, by file stem."""
    return {"reference": draw_reference(), **{fit: draw_fit(fit) for fit in FITS}}


def write_fit_pictures(folder: Path) -> list[Path]:
    """Write folder/<stem>.png for the reference and every fit (atomically); returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_png(folder / f"{stem}.png", im, optimize=True) for stem, im in fit_pictures().items()]


if __name__ == "__main__":
    for written in write_fit_pictures(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/fits")):
        print(written)
