"""One training example (a scene + its target image) as frozen dataclasses; image bytes kept as they came. Torch-free.

A `Record` holds the scene fields ctxgen validates (prompt, references, masks, boxes, labels, user layout, seed,
fit / z / ica) plus the `target` image, an optional `rejected` image (preference training, T4) and, per instance,
the IMIG extras (D2): the Kontext-repainted reference and its `valid_box`, a location point, the instance kind and
an aligned face crop. Boxes are in TARGET pixels (x1, y1, x2, y2), after EXIF orientation.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ctxgen.core.units import TOKEN

SCHEMA_VERSION = 1
KINDS = ("object", "face")
MIN_SIDE, MAX_SIDE = 256, 2048  # a scene's output size limits (the scene schema's `size`)
_SWAPS_AXES = (5, 6, 7, 8)  # EXIF orientations that transpose the picture

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ImageData:
    """Encoded image bytes exactly as they came (JPEG stays JPEG); `name` is the original file name, for messages."""

    data: bytes
    name: str

    def decode(self) -> np.ndarray:
        """uint8 (h, w, 3) or (h, w, 4): the safe decoder with R2 conversions and the pixel cap."""
        from ctxgen.scene.images import image_from_bytes

        return image_from_bytes(self.data, self.name)

    def decode_mask(self) -> np.ndarray:
        """uint8 (h, w): the bytes read as a mask (R2: converted to L)."""
        from ctxgen.scene.images import mask_from_bytes

        return mask_from_bytes(self.data, self.name)

    def size(self) -> tuple[int, int]:
        """(w, h) as displayed, from the header only (EXIF orientation applied, as `decode` does)."""
        return self._header[:2]

    def has_alpha(self) -> bool:
        """True when the header says the image carries transparency (RGBA, LA, PA or a transparent palette)."""
        return self._header[2]

    @cached_property
    def _header(self) -> tuple[int, int, bool]:
        """(w, h, has alpha) from one read of the header; a bad header is the safe reader's ImageError."""
        from PIL import Image

        from ctxgen.scene.images import FORMATS, image_size

        try:
            with Image.open(io.BytesIO(self.data), formats=FORMATS) as im:
                w, h = im.size
                alpha = im.mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in im.info
                turned = im.format in ("JPEG", "MPO", "TIFF", "WEBP") and _orientation(im) in _SWAPS_AXES
        except Exception:
            image_size(self.data, self.name)  # raises the reader's own one-line ImageError
            raise
        return (h, w, alpha) if turned else (w, h, alpha)


def _orientation(im) -> int:
    """The EXIF orientation tag (1 when absent or unreadable: the decoder then keeps the stored orientation)."""
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1


@dataclass(frozen=True)
class InstanceRecord:
    """One subject of a record: its reference, mask source, box in target pixels and the IMIG extras (D2)."""

    image: ImageData  # reference: an RGBA cut-out, or RGB together with `mask`
    mask: ImageData | None  # None: the image's alpha is the mask
    box: Box  # x1, y1, x2, y2 in TARGET pixels
    label: str | None = None
    phrase: str | None = None
    kind: str = "object"  # "object" | "face"
    valid_box: Box | None = None  # subject box inside the enhanced reference (IMIG `valid_bbox`)
    loc_point: tuple[float, float] | None = None  # a point of the subject, in target pixels
    enhanced_image: ImageData | None = None  # the Kontext-repainted reference (IMIG kontext_data/)
    enhanced_mask: ImageData | None = None  # its mask (None: enhanced_image's alpha)
    face_image: ImageData | None = None  # aligned face crop (RGBA) for face instances
    fit: str | None = None  # placement override (scene `fit`); None = the record's default
    z: int | None = None  # explicit layer, higher on top (R11)


@dataclass(frozen=True)
class Record:
    """One training example: the scene, its target image and the optional preference / layout images."""

    id: str
    subset: str
    prompt: str
    target: ImageData
    instances: tuple[InstanceRecord, ...]
    rejected: ImageData | None = None
    layout: ImageData | None = None  # user RGBA layout (R12)
    seed: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)  # free JSON
    fit: str | None = None  # scene-level `fit` when the source gave one
    ica: str | None = None  # scene-level `ica` when the source gave one

    def images(self) -> Iterator[tuple[str, ImageData]]:
        """Every image of the record with its field path (`target`, `instances[1].mask`, ...)."""
        for name in ("target", "rejected", "layout"):
            if getattr(self, name) is not None:
                yield name, getattr(self, name)
        for i, inst in enumerate(self.instances):
            for name in ("image", "mask", "enhanced_image", "enhanced_mask", "face_image"):
                if getattr(inst, name) is not None:
                    yield f"instances[{i}].{name}", getattr(inst, name)


def read_image_data(path: str | os.PathLike[str], hint: str = "") -> ImageData:
    """A file's bytes as ImageData (no decoding); a missing or unreadable file is one ImageError line."""
    from ctxgen.scene.images import ImageError
    from ctxgen.scene.model import file_problem

    path = Path(path)
    problem = file_problem(path, "image file", hint=hint)
    if problem is None:
        try:
            return ImageData(path.read_bytes(), path.name)
        except OSError as exc:
            problem = f"cannot read image file {path}: {exc.strerror or exc}"
    raise ImageError(path, problem)


def training_canvas(w: int, h: int) -> tuple[int, int]:
    """The scene size for a w x h target: aspect kept, sides within 256..2048, each rounded to a 16-px token (R13)."""
    scale = min(1.0, MAX_SIDE / max(w, h))
    scale = max(scale, MIN_SIDE / min(w, h))
    side = [min(MAX_SIDE, max(MIN_SIDE, TOKEN * round(v * scale / TOKEN))) for v in (w, h)]
    return side[0], side[1]


def scale_box(box: Box, src: tuple[float, float], dst: tuple[float, float]) -> Box:
    """A box from a src (w, h) frame to a dst (w, h) frame; identical frames return it unchanged (exact)."""
    if tuple(src) == tuple(dst):
        return tuple(float(v) for v in box)  # type: ignore[return-value]
    sx, sy = dst[0] / src[0], dst[1] / src[1]
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
