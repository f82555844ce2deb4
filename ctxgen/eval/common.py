"""What every benchmark evaluator shares: the image jobs, their per-image state, locating and opening images."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctxgen.core.errors import ModelError, UserError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg", ".webp")


@dataclass(frozen=True)
class Job:
    """One generated image to score: its case, sample number, file (None when missing) and report group."""

    case_id: str
    sample: int
    image: Path | None
    group: str
    case: Any = field(compare=False, hash=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.case_id}_{self.sample}"


@dataclass
class State:
    """One image while its stages run: the decoded pixels, intermediate results and the record being built."""

    job: Job
    rgb: np.ndarray
    record: dict
    scratch: dict = field(default_factory=dict)

    @property
    def pil(self) -> Any:
        from PIL import Image

        if "pil" not in self.scratch:
            self.scratch["pil"] = Image.fromarray(self.rgb)
        return self.scratch["pil"]


def find_image(folder: Path, names: Sequence[str]) -> Path | None:
    """The first existing `folder/name` among `names` (each tried with the usual image suffixes if it has none)."""
    for name in names:
        p = folder / name
        candidates = [p] if p.suffix else [p.with_name(p.name + s) for s in IMAGE_SUFFIXES]
        for c in candidates:
            if c.is_file():
                return c
    return None


def open_rgb(path: Path) -> np.ndarray:
    """A generated image as uint8 (H, W, 3) RGB through ctxgen's safe opener (pixel cap, format allow-list)."""
    from ctxgen.scene.images import open_image

    with open_image(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def require_square(rgb: np.ndarray, path: Path, bench: str) -> None:
    """Benchmarks that scale normalised boxes by the width need square images; one line naming the file."""
    h, w = rgb.shape[:2]
    if h != w:
        raise UserError(f"{path} size: {w}x{h} is not square; {bench} scales its boxes by the image width, "
                        "so render the benchmark's square size")


def pil_of(arr: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(arr))


def each(states: list[State], fn: Any) -> None:
    """Run `fn(state)` for every state not yet failed; a UserError fails that image only (counted, reported)."""
    for st in states:
        if "error" in st.record:
            continue
        try:
            fn(st)
        except ModelError:
            raise  # a model that does not load stops the run: every image would fail the same way
        except UserError as exc:
            st.record["error"] = str(exc)
