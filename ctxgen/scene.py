"""Stage 1: YAML scene file -> validated, frozen `Scene` (R1). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in output pixels
Fit = Literal["instance", "distort", "image"]
IcaMode = Literal["official", "paper"]
MaskMode = Literal["alpha", "file", "auto"]


@dataclass(frozen=True)
class Instance:
    """One subject: its reference image, mask source and box (already in output pixels, clipped, R8)."""

    index: int  # position in scene order (0-based)
    image: Path  # resolved absolute path
    mask_mode: MaskMode
    mask: Path | None  # resolved path when mask_mode == "file"
    box: Box  # output pixels, clipped to the canvas
    fit: Fit  # resolved: per-instance override, else the scene default
    label: str | None = None
    phrase: str | None = None
    z: int | None = None  # explicit layer, higher on top (R11)
    point: tuple[float, float] | None = None  # SAM prompt point in reference pixels (mask: auto)
    prompt_box: Box | None = None  # SAM prompt box in reference pixels (mask: auto)
    line: int = 0  # 1-based YAML line of this instance, for later error messages


@dataclass(frozen=True)
class Scene:
    """A validated scene; everything downstream reads only this."""

    source: Path  # resolved path of the YAML file
    digest: str  # sha256 hex of the YAML file bytes
    prompt: str
    size: tuple[int, int]  # W, H (multiples of 16, 256..2048)
    seeds: tuple[int, ...]  # one image per seed
    seed_random: bool  # True when the seed was drawn because the file gave none
    steps: int
    guidance: float
    layout: Path | None  # None = auto layout, else a user RGBA layout image (R12)
    ica: IcaMode
    instances: tuple[Instance, ...]
    warnings: tuple[str, ...] = field(default=())  # e.g. boxes clipped to the canvas (R8)

    @property
    def stem(self) -> str:
        return self.source.stem
