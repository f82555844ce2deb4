"""Which scene files a command works on: files, folders, globs, or a list file (`-` for stdin)."""

from __future__ import annotations

import glob
import sys
from pathlib import Path

from ctxgen.core.errors import UsageError

SCENE_SUFFIXES = (".yaml", ".yml")


def collect_scenes(args: list[str], from_file: str | None = None) -> list[Path]:
    """Expand arguments into scene paths in a stable order, without duplicates."""
    items = list(args)
    if from_file is not None:
        items += _read_list(from_file)
    out: list[Path] = []
    seen: set[Path] = set()
    for item in items:
        for p in _expand(item):
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                out.append(p)
    if not out:
        raise UsageError("no scene files given; pass YAML files, folders, globs, or --from LIST")
    return out


def _read_list(from_file: str) -> list[str]:
    if from_file == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(from_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{from_file}: cannot read the scene list ({exc.strerror}); check the --from path") from exc
    lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _expand(item: str) -> list[Path]:
    p = Path(item)
    if p.is_dir():
        found = sorted(q for q in p.rglob("*") if q.suffix.lower() in SCENE_SUFFIXES and q.is_file())
        if not found:
            raise UsageError(f"{item}: folder holds no .yaml scene files")
        return found
    if p.exists() or not glob.has_magic(item):
        return [p]  # a missing plain path is reported by the scene loader with its name
    matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
    if not matches:
        raise UsageError(f"{item}: the pattern matches no files")
    return matches
