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
    """`root/<name>` per scene file, unique across the whole batch and never outside `root`.

    The name is the file's stem (made safe); stems shared by several files get a hash of the resolved path, and
    a name that still collides (a file named like another's hashed folder) gets a longer hash, until every folder
    is unique. The result depends only on the set of scene files, so a re-run finds the same folders.
    """
    resolved = {p: str(p.resolve()) for p in scenes}
    names: dict[Path, str] = {p: safe_name(p.stem) for p in scenes}
    for width in (6, 12, 64):
        clashes = _clashes(names, resolved)
        if not clashes:
            break
        for p in clashes:
            names[p] = f"{safe_name(p.stem)}-{hashlib.sha256(resolved[p].encode()).hexdigest()[:width]}"
    return {p: root / names[p] for p in scenes}


def _clashes(names: dict[Path, str], resolved: dict[Path, str]) -> list[Path]:
    """The scenes whose folder name another scene file (not the same file given twice) also has."""
    groups: dict[str, set[str]] = {}
    for p, name in names.items():
        groups.setdefault(name, set()).add(resolved[p])
    return [p for p, name in names.items() if len(groups[name]) > 1]


def overlay_names(n_instances: int) -> list[str]:
    """The debug overlays of one render (file stems in `seed-<N>.debug/`): the layout, one per instance, the masks."""
    return ["layout", *(f"instance-{n}" for n in range(n_instances)), "masks"]


def seed_of(path: Path) -> int | None:
    """N of an output named `seed-<N>.png`, `.json` or `.debug`; None for other names."""
    stem = path.name.split(".", 1)[0]
    digits = stem.removeprefix("seed-")
    return int(digits) if stem.startswith("seed-") and digits.isdigit() and len(digits) <= 20 else None
