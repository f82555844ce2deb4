"""Scene folders for the editor's tests (API and browser): a commented scene YAML and small RGBA cut-outs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Comments, blank lines, quoting styles and key order that a save must keep byte for byte.
SCENE = """\
# A picnic, composed by hand.
prompt: "A red ball and a blue kite in a park"   # the whole picture
size: [256, 256]
seed: 7
steps: 2

instances:
  # the ball sits low
  - image: refs/ball.png
    box: [16, 144, 112, 240]
    label: ball
  - image: refs/kite.png
    box: [128, 16, 240, 128]   # up in the sky
    label: 'kite'
    phrase: a blue kite
"""


def blob(w: int, h: int, rgb: tuple[int, int, int], alpha: bool = True) -> Image.Image:
    """An ellipse cut-out of one colour: opaque inside, transparent outside (RGB on white without alpha)."""
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - w / 2 + 0.5) / (w / 2 - 1)) ** 2 + ((yy - h / 2 + 0.5) / (h / 2 - 1)) ** 2 <= 1.0  # (h, w)
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[inside, :3] = rgb
    rgba[..., 3] = np.where(inside, 255, 0)
    if not alpha:
        rgba[~inside, :3] = 255
        return Image.fromarray(rgba[..., :3], "RGB")
    return Image.fromarray(rgba, "RGBA")


def make_scene_folder(root: Path, text: str = SCENE) -> Path:
    """`root/scene.yaml` with refs/ball.png, refs/kite.png (RGBA) and refs/photo.jpg (RGB, no alpha)."""
    refs = root / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    blob(64, 64, (220, 40, 30)).save(refs / "ball.png")
    blob(80, 56, (40, 80, 220)).save(refs / "kite.png")
    blob(72, 60, (30, 160, 60), alpha=False).save(refs / "photo.jpg", quality=95)
    path = root / "scene.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def png_bytes(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
