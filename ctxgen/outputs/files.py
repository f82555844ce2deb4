"""Stage 6: where a scene's outputs go: one folder per scene file under --out, seed-<N> files inside."""

from __future__ import annotations

import hashlib
from pathlib import Path


def image_path(out_dir: Path, seed: int) -> Path:
    return out_dir / f"seed-{seed}.png"


def safe_name(stem: str) -> str:
    """A folder name from a file stem: letters, digits, `-_.` only, never hidden, never empty."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).lstrip(".") or "scene"


def scene_out_dirs(scenes: list[Path], root: Path) -> dict[Path, Path]:
    """`root/<name>` per scene file; names shared by several files get a short path hash (never escapes root)."""
    by_name: dict[str, list[Path]] = {}
    for p in scenes:
        by_name.setdefault(safe_name(p.stem), []).append(p)
    out: dict[Path, Path] = {}
    for name, paths in by_name.items():
        for p in paths:
            tag = "" if len(paths) == 1 else "-" + hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:6]
            out[p] = root / f"{name}{tag}"
    return out


def overlay_names(n_instances: int) -> list[str]:
    """The debug overlays of one render (file stems in `seed-<N>.debug/`): the layout, one per instance, the masks."""
    return ["layout", *(f"instance-{n}" for n in range(n_instances)), "masks"]


def seed_of(path: Path) -> int | None:
    """N of an output named `seed-<N>.png`, `.json` or `.debug`; None for other names."""
    stem = path.name.split(".", 1)[0]
    digits = stem.removeprefix("seed-")
    return int(digits) if stem.startswith("seed-") and digits.isdigit() and len(digits) <= 20 else None
