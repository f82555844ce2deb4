"""Which scene files a command works on: files, folders, globs, or a list file (`-` for stdin). Torch-free.

Folders and `**` globs are walked without following symbolic links to folders (a link loop such as `l1 -> .` would
otherwise never end); links to files are followed. A `--from` list is read with a size cap, as UTF-8 (a leading
byte-order mark is dropped), and a bad byte is a one-line usage error naming its line.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ctxgen.core.errors import UsageError

SCENE_SUFFIXES = (".yaml", ".yml")
MAX_LIST_BYTES = 64 * 1024 * 1024  # a list of a million scene paths; anything larger is not a scene list


def collect_scenes(args: list[str], from_file: str | None = None) -> list[Path]:
    """Expand arguments into scene paths in a stable order, without duplicates."""
    items = list(args)
    if from_file is not None:
        items += read_list(from_file)
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


def read_list(from_file: str) -> list[str]:
    """The paths of a `--from` list, one per line; blank lines and `#` comments skipped."""
    shown = "stdin" if from_file == "-" else from_file
    try:
        if from_file == "-":
            stream = getattr(sys.stdin, "buffer", None)  # a text stream without bytes (tests, embedding) is read as text
            raw = stream.read(MAX_LIST_BYTES + 1) if stream is not None else sys.stdin.read(MAX_LIST_BYTES + 1).encode()
        else:
            with open(from_file, "rb") as fh:
                raw = fh.read(MAX_LIST_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read the scene list ({exc.strerror or exc}); check the --from path") from None
    if len(raw) > MAX_LIST_BYTES:
        raise UsageError(f"{shown}: the scene list is larger than {MAX_LIST_BYTES // 2**20} MiB; "
                         "this is not a list of scene paths")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{shown}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); "
                         "save the scene list as UTF-8") from None
    if "\x00" in text:
        raise UsageError(f"{shown}: the scene list contains NUL bytes; this is not a list of scene paths")
    lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _expand(item: str) -> list[Path]:
    p = Path(item)
    if p.is_dir():
        found = sorted(q for q in _walk(p) if q.suffix.lower() in SCENE_SUFFIXES)
        if not found:
            raise UsageError(f"{item}: folder holds no .yaml scene files")
        return found
    if p.exists() or not glob.has_magic(item):
        return [p]  # a missing plain path is reported by the scene loader with its name
    matches = sorted(_glob(item))
    if not matches:
        raise UsageError(f"{item}: the pattern matches no files")
    return matches


def _walk(root: Path) -> Iterator[Path]:
    """Every regular file below `root` (links to files included), never entering a linked folder."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_file():
                yield path


def _glob(pattern: str) -> Iterator[Path]:
    """Files matching a glob; `**` spans folders (walked without following folder links)."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    base = Path(*parts[:fixed]) if fixed else Path(".")
    rest = parts[fixed:]
    if "**" not in rest:
        yield from (Path(m) for m in glob.glob(pattern) if Path(m).is_file())
        return
    for path in _walk(base):
        rel = path.relative_to(base).parts
        if _match(rel, rest):
            yield path if fixed else Path(*rel)


def _match(names: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Path components against pattern components, `**` matching any number of folders (hidden names need a dot)."""
    if not pattern:
        return not names
    head, tail = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(names[k:], tail) for k in range(len(names) + 1)
                   if not any(n.startswith(".") for n in names[:k]))
    if not names or (names[0].startswith(".") and not head.startswith(".")):
        return False
    return fnmatch.fnmatchcase(names[0], head) and _match(names[1:], tail)
