"""One process at a time per scene folder: an advisory lock file beside the folder, removed after use.

Two runs of the same command into the same --out then never render the same scene at the same time; the second
one finds the first one's outputs done and skips them. The lock is `flock` on `OUT/.<scene>.lock` (POSIX; where
`fcntl` is missing, e.g. on Windows, scenes are not locked). The file is removed by its holder; a waiter that wakes
on a removed file retries on the new one, so the lock stays exclusive.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ctxgen.core.errors import OutputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class SceneBusy(Exception):
    """Another live process holds this scene folder's lock (raised only when not waiting)."""


def lock_path(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.lock"


@contextmanager
def scene_lock(out_dir: Path, wait: bool = True) -> Iterator[None]:
    """Hold the scene folder's lock for the block; SceneBusy when another process holds it and `wait` is False."""
    if fcntl is None:
        yield
        return
    path = lock_path(out_dir)
    fd = _acquire(path, out_dir, wait)
    try:
        yield
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)  # closing releases the lock


def _acquire(path: Path, out_dir: Path, wait: bool) -> int:
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"{out_dir}: cannot write here ({exc.strerror}); choose another folder with --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise SceneBusy(str(path)) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino  # not unlinked by the previous holder meanwhile
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
