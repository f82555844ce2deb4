"""Face role: insightface FaceAnalysis on onnxruntime (the optional `eval` extra) (E3 IDS).

`faces(rgb)` returns one embedding per detected face in insightface's order (SCRFD sorts by detection
score, so the first is the most confident). `tiny-random` is a seeded stand-in that finds one "face" per
image (a random projection of a 32x32 thumbnail), so the IDS path runs in tests without insightface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ctxgen.core.errors import ModelError, install_hint
from ctxgen.vision.registry import TINY

INSTALL = install_hint("eval") + " (insightface and onnxruntime)"


class InsightFace:
    """insightface's FaceAnalysis with detector size 640 (as the LAMICBench++ script prepares it)."""

    def __init__(self, app: Any, ident: str):
        self.app, self.ident = app, ident

    def faces(self, rgb: np.ndarray) -> list[np.ndarray]:
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # insightface reads OpenCV's BGR order
        return [np.asarray(f.embedding, dtype=np.float64) for f in self.app.get(bgr)]


class TinyFace:
    """A seeded stand-in: exactly one face per image, embedding = random projection of a 32x32 thumbnail."""

    ident = TINY

    def __init__(self, seed: int = 0, dim: int = 16):
        self.proj = np.random.default_rng(seed).standard_normal((32 * 32 * 3, dim))

    def faces(self, rgb: np.ndarray) -> list[np.ndarray]:
        from PIL import Image

        small = np.asarray(Image.fromarray(rgb).resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64)
        return [(small.reshape(-1) / 255.0 - 0.5) @ self.proj]


def load_face(value: str, device: str, hub: bool) -> InsightFace | TinyFace:
    """`tiny-random`, an insightface model-pack name (buffalo_l, antelopev2) or a folder holding one."""
    if value == TINY:
        return TinyFace()
    try:
        from insightface.app import FaceAnalysis
    except ImportError:
        raise ModelError(f"face: insightface is not installed; {INSTALL}") from None
    path = Path(value).expanduser()
    name, root = (path.name, path.parent.parent) if path.is_dir() else (value, Path("~/.insightface").expanduser())
    if not (root / "models" / name).is_dir():
        raise ModelError(f"face: insightface model pack {name!r} not found under {root / 'models'}; unpack it there "
                         "(insightface downloads it only when run online) or give its folder in EVAL.yaml")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") else \
        ["CPUExecutionProvider"]
    try:
        app = FaceAnalysis(name=name, root=str(root), providers=providers)
        app.prepare(ctx_id=0 if device.startswith("cuda") else -1, det_size=(640, 640))
    except Exception as exc:  # onnxruntime and insightface raise many kinds; one line for all
        raise ModelError(f"face: cannot load insightface pack {name!r} ({type(exc).__name__}: {exc})") from exc
    return InsightFace(app, f"insightface:{(root / 'models' / name).resolve()}")
