"""Faces for the flexible path (D4): boxes, normalised embeddings and aligned crops (insightface, optional extra).

The published annotator aligns faces with facexlib's restoration helper, which is not packaged here; ctxgen aligns
with insightface's own five-point similarity transform (`face_align.norm_crop`) at 512 px. `tiny-random` is a
seeded stand-in (one face: the central half of the image, the vision role's embedding) so the path runs in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ctxgen.core.errors import ModelError
from ctxgen.vision.registry import TINY

ALIGNED = 512


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]
    embedding: np.ndarray  # L2-normalised
    kps: np.ndarray | None  # (5, 2) landmarks, when the detector gives them


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)


class InsightFaces:
    """insightface FaceAnalysis (detector size 512, as the published annotator prepares it)."""

    def __init__(self, app: Any, ident: str):
        self.app, self.ident = app, ident

    def find(self, rgb: np.ndarray) -> list[Face]:
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        return [Face(tuple(float(v) for v in f.bbox), _unit(f.normed_embedding), np.asarray(f.kps))
                for f in self.app.get(bgr)]

    def align(self, rgb: np.ndarray, mask: np.ndarray, face: Face) -> np.ndarray:
        """RGBA (512, 512, 4): the face warped to the canonical five points, alpha = the warped subject mask."""
        from insightface.utils import face_align

        rgb_crop = face_align.norm_crop(np.ascontiguousarray(rgb), face.kps, image_size=ALIGNED)
        alpha = face_align.norm_crop(np.repeat(mask.astype(np.uint8)[..., None] * 255, 3, axis=2), face.kps,
                                     image_size=ALIGNED)[..., 0]
        return np.dstack([rgb_crop, alpha])  # (512, 512, 4)


class TinyFaces:
    """The seeded stand-in: one face per image (its central half), embedding from the vision role's TinyFace."""

    ident = TINY

    def __init__(self) -> None:
        from ctxgen.vision.face import TinyFace

        self.inner = TinyFace()

    def find(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        return [Face((w / 4, h / 4, 3 * w / 4, 3 * h / 4), _unit(self.inner.faces(rgb)[0]), None)]

    def align(self, rgb: np.ndarray, mask: np.ndarray, face: Face) -> np.ndarray:
        from PIL import Image

        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        rgba = np.dstack([rgb[y1:y2, x1:x2], mask[y1:y2, x1:x2].astype(np.uint8) * 255])  # (h, w, 4)
        return np.asarray(Image.fromarray(rgba, "RGBA").resize((ALIGNED // 8, ALIGNED // 8)))


def load_faces(value: str, device: str) -> InsightFaces | TinyFaces:
    """`tiny-random`, or an insightface pack name / folder (the vision role's loader finds and checks it)."""
    if value == TINY:
        return TinyFaces()
    from ctxgen.vision.face import load_face

    role = load_face(value, device, False)
    app = getattr(role, "app", None)
    if app is None:
        raise ModelError(f"models.face: {value!r} did not load as insightface")
    app.prepare(ctx_id=0 if device.startswith("cuda") else -1, det_size=(512, 512))
    return InsightFaces(app, role.ident)


def largest(faces: list[Face]) -> Face | None:
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])) if faces else None
