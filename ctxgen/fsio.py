"""Atomic file writes: a temp file in the target folder, then os.replace, so no reader ever sees half a file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import OutputError


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside `path`; on success rename it over `path`, on any error remove it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=(suffix or path.suffix) + ".part", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"{path.parent}: cannot write here ({exc.strerror}); choose another folder with --out") from exc
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"{path}: write failed ({exc.strerror or exc}); free disk space or choose another --out") from exc
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def write_with(path: Path, writer: Callable[[IO[bytes]], Any]) -> Path:
    """Write `path` atomically through `writer(file)`."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    return write_with(path, lambda fh: fh.write(data))


def write_json(path: Path, obj: Any) -> Path:
    return write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def clean_stale_parts(folder: Path) -> int:
    """Remove `.*.part` temp files a killed run left behind; returns how many."""
    n = 0
    if folder.is_dir():
        for p in folder.glob(".*.part"):
            _remove(str(p))
            n += 1
    return n
