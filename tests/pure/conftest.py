"""Helpers for the pure tests: tiny scenes and reference images written into a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REF_W, REF_H = 64, 48


def cutout(w: int = REF_W, h: int = REF_H) -> Image.Image:
    """An RGBA cut-out: a red ellipse, opaque inside, soft (alpha 0..255) at the rim, transparent outside."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((xx - w / 2 + 0.5) / (w / 2 - 2), (yy - h / 2 + 0.5) / (h / 2 - 2))
    alpha = np.clip((1.1 - r) * 10, 0, 1) * 255  # (h, w)
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 220, 40, 30, alpha.astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp folder as the working directory, holding refs/cut.png (RGBA), refs/photo.png (RGB),
    refs/mask.png (L, same size) and refs/clear.png (fully transparent RGBA)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CTXGEN_MAX_PIXELS", raising=False)
    refs = tmp_path / "refs"
    refs.mkdir()
    cut = cutout()
    cut.save(refs / "cut.png")
    cut.convert("RGB").save(refs / "photo.png")
    cut.getchannel("A").save(refs / "mask.png")
    Image.new("RGBA", (REF_W, REF_H), (255, 255, 255, 0)).save(refs / "clear.png")
    return tmp_path


@pytest.fixture
def write(workdir: Path):
    """write(text, name="s.yaml") -> name: a dedented scene file in the working directory."""

    def _write(text: str, name: str = "s.yaml") -> str:
        (workdir / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return name

    return _write


@pytest.fixture
def make_cutout():
    """cutout(w, h) -> an RGBA cut-out image (see `cutout`)."""
    return cutout
