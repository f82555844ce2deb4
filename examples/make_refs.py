"""Draw the example reference images procedurally (deterministic): `python3 examples/make_refs.py`.

Each subject is drawn with Pillow at 4x and downsampled with LANCZOS, so edges and alpha are anti-aliased.
Outputs go to examples/refs/: RGBA cut-outs, one RGB JPEG with a separate mask, and a user layout image.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

SS = 4  # supersampling factor
REFS = Path(__file__).resolve().parent / "refs"


def canvas(w: int, h: int) -> tuple[Image.Image, ImageDraw.ImageDraw, float]:
    """A transparent supersampled canvas; coordinates are given in output pixels times `k`."""
    im = Image.new("RGBA", (w * SS, h * SS), (0, 0, 0, 0))
    return im, ImageDraw.Draw(im), float(SS)


def finish(im: Image.Image) -> Image.Image:
    return im.resize((im.width // SS, im.height // SS), Image.Resampling.LANCZOS)


def sc(k: float, *xy: float) -> list[float]:
    return [v * k for v in xy]


def cat() -> Image.Image:
    """An orange tabby sitting, front view."""
    im, d, k = canvas(420, 480)
    orange, dark, cream = (236, 139, 45, 255), (176, 88, 22, 255), (255, 226, 180, 255)
    d.line(sc(k, 300, 440, 380, 400, 390, 320, 360, 260), fill=orange, width=int(28 * k), joint="curve")
    d.ellipse(sc(k, 80, 220, 340, 470), fill=orange)
    d.ellipse(sc(k, 140, 300, 280, 465), fill=cream)
    for y in (280, 315, 350):
        d.arc(sc(k, 95, y, 155, y + 60), 200, 330, fill=dark, width=int(10 * k))
        d.arc(sc(k, 265, y, 325, y + 60), 210, 340, fill=dark, width=int(10 * k))
    d.polygon(sc(k, 95, 120, 120, 20, 190, 85), fill=orange)
    d.polygon(sc(k, 325, 120, 300, 20, 230, 85), fill=orange)
    d.polygon(sc(k, 115, 100, 127, 45, 170, 85), fill=(250, 170, 170, 255))
    d.polygon(sc(k, 305, 100, 293, 45, 250, 85), fill=(250, 170, 170, 255))
    d.ellipse(sc(k, 80, 50, 340, 260), fill=orange)
    for x in (170, 200, 230):
        d.line(sc(k, x + 10, 60, x + 10, 100), fill=dark, width=int(9 * k))
    for x in (150, 270):
        d.ellipse(sc(k, x - 26, 120, x + 26, 172), fill=(120, 200, 80, 255))
        d.ellipse(sc(k, x - 8, 124, x + 8, 168), fill=(20, 20, 20, 255))
        d.ellipse(sc(k, x + 6, 132, x + 14, 142), fill=(255, 255, 255, 255))
    d.ellipse(sc(k, 170, 175, 250, 235), fill=cream)
    d.polygon(sc(k, 195, 180, 225, 180, 210, 198), fill=(220, 90, 110, 255))
    d.line(sc(k, 210, 198, 210, 212), fill=dark, width=int(4 * k))
    d.arc(sc(k, 185, 195, 212, 222), 20, 160, fill=dark, width=int(4 * k))
    d.arc(sc(k, 208, 195, 235, 222), 20, 160, fill=dark, width=int(4 * k))
    for dy in (-12, 0, 12):
        d.line(sc(k, 165, 205 + dy, 95, 195 + 2 * dy), fill=(60, 40, 30, 255), width=int(3 * k))
        d.line(sc(k, 255, 205 + dy, 325, 195 + 2 * dy), fill=(60, 40, 30, 255), width=int(3 * k))
    for x in (150, 270):
        d.ellipse(sc(k, x - 40, 420, x + 40, 470), fill=orange)
    return finish(im)


def dog() -> Image.Image:
    """A brown dog standing, side view, with a red collar."""
    im, d, k = canvas(560, 420)
    brown, dark, light = (160, 100, 50, 255), (100, 60, 30, 255), (215, 170, 120, 255)
    d.line(sc(k, 90, 190, 40, 120, 55, 70), fill=brown, width=int(26 * k), joint="curve")
    for x in (120, 170, 330, 380):
        d.rounded_rectangle(sc(k, x, 230, x + 42, 400), radius=18 * k, fill=brown if x % 100 else dark)
        d.ellipse(sc(k, x - 8, 380, x + 56, 412), fill=dark)
    d.ellipse(sc(k, 80, 150, 430, 300), fill=brown)
    d.ellipse(sc(k, 150, 215, 360, 295), fill=light)
    d.polygon(sc(k, 350, 200, 420, 90, 470, 120, 420, 230), fill=brown)
    d.ellipse(sc(k, 370, 40, 510, 170), fill=brown)
    d.rounded_rectangle(sc(k, 450, 105, 548, 160), radius=25 * k, fill=light)
    d.ellipse(sc(k, 522, 100, 552, 128), fill=(30, 20, 20, 255))
    d.line(sc(k, 470, 148, 530, 150), fill=dark, width=int(4 * k))
    d.ellipse(sc(k, 440, 70, 466, 96), fill=(255, 255, 255, 255))
    d.ellipse(sc(k, 447, 76, 463, 92), fill=(30, 20, 10, 255))
    d.ellipse(sc(k, 365, 40, 425, 170), fill=dark)
    d.line(sc(k, 360, 185, 430, 215), fill=(220, 30, 40, 255), width=int(18 * k))
    d.ellipse(sc(k, 385, 205, 410, 230), fill=(250, 210, 40, 255))
    return finish(im)


def ball() -> Image.Image:
    """A glossy red ball with a white band and a soft highlight."""
    im, d, k = canvas(300, 300)
    for i in range(40):  # radial shading: dark rim to bright centre, offset to the upper left
        t = i / 39
        r = 145 * (1 - t) + 40 * t
        cx, cy = 150 - 30 * t, 150 - 30 * t
        colour = (int(150 + 100 * t), int(10 + 40 * t), int(20 + 30 * t), 255)
        d.ellipse(sc(k, cx - r, cy - r, cx + r, cy + r), fill=colour)
    d.arc(sc(k, 6, 95, 294, 215), 0, 180, fill=(250, 245, 235, 255), width=int(16 * k))
    d.ellipse(sc(k, 80, 55, 135, 95), fill=(255, 230, 230, 230))
    return finish(im)


def teapot(background: tuple[int, int, int, int] | None = None) -> Image.Image:
    """A teal teapot with a lid, spout and handle; on `background` (opaque) or transparent."""
    im, d, k = canvas(520, 400)
    if background is not None:
        d.rectangle((0, 0, im.width, im.height), fill=background)
    teal, dark, gold = (40, 150, 160, 255), (20, 90, 100, 255), (230, 185, 60, 255)
    d.ellipse(sc(k, 350, 140, 480, 300), outline=teal, width=int(26 * k))
    d.polygon(sc(k, 150, 230, 40, 120, 20, 130, 25, 150, 110, 280), fill=teal)
    d.ellipse(sc(k, 10, 118, 45, 140), fill=dark)
    d.ellipse(sc(k, 110, 110, 410, 380), fill=teal)
    d.ellipse(sc(k, 150, 150, 230, 250), fill=(120, 210, 215, 255))
    d.chord(sc(k, 120, 300, 400, 380), 0, 180, fill=dark)
    d.rectangle(sc(k, 120, 238, 400, 256), fill=gold)
    d.ellipse(sc(k, 170, 85, 350, 140), fill=dark)
    d.ellipse(sc(k, 235, 45, 285, 95), fill=gold)
    return finish(im)


def tree() -> Image.Image:
    """A round green tree with a brown trunk and red apples."""
    im, d, k = canvas(440, 640)
    d.polygon(sc(k, 185, 630, 200, 330, 240, 330, 260, 630), fill=(120, 80, 40, 255))
    d.polygon(sc(k, 215, 420, 140, 330, 150, 320, 220, 395), fill=(120, 80, 40, 255))
    blobs = [(220, 190, 170), (120, 250, 100), (320, 250, 100), (150, 130, 90), (290, 130, 95), (220, 300, 110)]
    shades = [(60, 150, 60), (50, 130, 50), (70, 165, 65), (80, 175, 70), (55, 140, 55), (65, 155, 60)]
    for (x, y, r), (cr, cg, cb) in zip(blobs, shades):
        d.ellipse(sc(k, x - r, y - r, x + r, y + r), fill=(cr, cg, cb, 255))
    for x, y in [(140, 220), (260, 160), (310, 290), (190, 320), (230, 90), (90, 290)]:
        d.ellipse(sc(k, x - 14, y - 14, x + 14, y + 14), fill=(210, 30, 40, 255))
        d.ellipse(sc(k, x - 7, y - 9, x - 1, y - 3), fill=(255, 200, 200, 255))
    return finish(im)


def robot() -> Image.Image:
    """A friendly grey robot with an antenna, glowing eyes and a chest panel."""
    im, d, k = canvas(380, 600)
    grey, dark, cyan = (170, 178, 190, 255), (90, 96, 110, 255), (60, 220, 240, 255)
    d.line(sc(k, 190, 75, 190, 25), fill=dark, width=int(8 * k))
    d.ellipse(sc(k, 175, 5, 205, 35), fill=(240, 70, 60, 255))
    d.rounded_rectangle(sc(k, 100, 70, 280, 200), radius=30 * k, fill=grey, outline=dark, width=int(6 * k))
    for x in (150, 230):
        d.ellipse(sc(k, x - 22, 110, x + 22, 154), fill=cyan)
        d.ellipse(sc(k, x - 8, 124, x + 8, 140), fill=(255, 255, 255, 255))
    d.rounded_rectangle(sc(k, 145, 170, 235, 185), radius=6 * k, fill=dark)
    for x0 in (20, 300):
        d.rounded_rectangle(sc(k, x0, 240, x0 + 60, 420), radius=25 * k, fill=grey, outline=dark, width=int(5 * k))
        d.ellipse(sc(k, x0 - 5, 400, x0 + 65, 460), fill=dark)
    for x0 in (120, 210):
        d.rounded_rectangle(sc(k, x0, 460, x0 + 50, 590), radius=15 * k, fill=dark)
    d.rounded_rectangle(sc(k, 80, 210, 300, 480), radius=35 * k, fill=grey, outline=dark, width=int(6 * k))
    d.rounded_rectangle(sc(k, 130, 260, 250, 360), radius=15 * k, fill=(40, 50, 70, 255))
    for i, colour in enumerate([(240, 70, 60, 255), (250, 200, 50, 255), (80, 210, 90, 255)]):
        d.ellipse(sc(k, 145 + 35 * i, 290, 170 + 35 * i, 315), fill=colour)
    d.rectangle(sc(k, 145, 330, 235, 340), fill=cyan)
    return finish(im)


def mask_of(im: Image.Image) -> Image.Image:
    """The L mask of an RGBA drawing (its alpha)."""
    return im.getchannel("A")


def park_layout(refs: dict[str, Image.Image]) -> Image.Image:
    """A 768x768 RGBA user layout: the tree, the dog and the ball pasted where park.yaml puts them."""
    out = Image.new("RGBA", (768, 768), (0, 0, 0, 0))
    for name, (x, y, w) in {"tree": (430, 60, 300), "dog": (90, 380, 420), "ball": (470, 560, 140)}.items():
        im = refs[name]
        im = im.resize((w, round(im.height * w / im.width)), Image.Resampling.LANCZOS)
        out.alpha_composite(im, (x, y))
    return out


def save(im: Image.Image, path: Path, **kw) -> None:
    """Encode in memory, then write atomically (temp file in the same folder, os.replace)."""
    buf = io.BytesIO()
    im.save(buf, format="JPEG" if path.suffix == ".jpg" else "PNG", **kw)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(buf.getvalue())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main() -> None:
    REFS.mkdir(parents=True, exist_ok=True)
    refs = {"cat": cat(), "dog": dog(), "ball": ball(), "tree": tree(), "robot": robot()}
    for name, im in refs.items():
        save(im, REFS / f"{name}.png", optimize=True)
    pot = teapot()
    save(teapot((245, 235, 215, 255)).convert("RGB"), REFS / "teapot.jpg", quality=90)
    save(mask_of(pot), REFS / "teapot_mask.png", optimize=True)
    save(park_layout(refs), REFS / "park_layout.png", optimize=True)


if __name__ == "__main__":
    main()
