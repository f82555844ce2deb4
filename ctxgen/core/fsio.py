"""Atomic file writes: a temp file in the target folder, then os.replace, so no reader ever sees half a file.

Temp files are named `.<name>.<host>-<pid>.<random>.part`: `clean_stale_parts` removes only those whose
writer is provably gone (a dead pid on this host, or an untagged name from an older version), so two processes
writing into one folder never delete each other's files. Finished files get the usual permissions (0666 minus the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ctxgen.core.errors import OutputError

PART = ".part"
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:32] or "host"
_PART_RE = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.[^.]+\.part$")
_umask: int | None = None
_umask_lock = threading.Lock()


def file_mode() -> int:
    """0o666 minus this process's umask (read once: os.umask can only be read by setting it)."""
    global _umask
    with _umask_lock:
        if _umask is None:
            _umask = os.umask(0o022)
            os.umask(_umask)
    return 0o666 & ~_umask


def dir_mode() -> int:
    """0o777 minus the umask: the mode of folders ctxgen creates whole (e.g. staged overlay folders)."""
    mode = file_mode()
    return mode | ((mode & 0o444) >> 2)


def part_prefix(path: Path) -> str:
    """The start of a temp name beside `path`: `.<name>.<host>-<pid>.` (see `is_stale_part`)."""
    return f".{Path(path).name}.{_HOST}-{os.getpid()}."


def stage(path: Path, writer: Callable[[IO[bytes]], Any]) -> Path:
    """Write a complete, fsynced temp file beside `path` through `writer(file)`; returns it (the caller publishes).

    On any failure the temp file is removed and an OutputError names `path`. This is the one place every ctxgen
    output is written (and where tests inject a full disk).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=part_prefix(path), suffix=PART, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path.parent}: cannot write here ({exc.strerror}); choose another folder with --out") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"{path}: write failed ({exc.strerror or exc}); free disk space or choose another --out") from exc
    except BaseException:
        _remove(tmp)
        raise
    return Path(tmp)


def publish(tmp: Path, path: Path) -> Path:
    """Rename a staged temp file over `path` (atomic on one file system)."""
    try:
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"{path}: write failed ({exc.strerror or exc}); free disk space or choose another --out") from exc
    return Path(path)


def discard(tmp: Path | None) -> None:
    """Remove a staged temp file that will not be published."""
    if tmp is not None:
        _remove(tmp)


def _remove(tmp: str | Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def write_with(path: Path, writer: Callable[[IO[bytes]], Any]) -> Path:
    """Write `path` atomically through `writer(file)`."""
    tmp = stage(path, writer)
    try:
        return publish(tmp, path)
    except BaseException:  # an interrupt between staging and the rename: no temp file is left behind
        discard(tmp)
        raise


def write_bytes(path: Path, data: bytes) -> Path:
    return write_with(path, lambda fh: fh.write(data))


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    return write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode())


def png_bytes(image: Any, **save_kwargs: Any) -> bytes:
    """A PIL image encoded as PNG in memory (so a failed encode never touches the disk)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", **save_kwargs)
    return buf.getvalue()


def write_png(path: Path, image: Any, **save_kwargs: Any) -> Path:
    """Save a PIL image atomically as PNG."""
    return write_bytes(path, png_bytes(image, **save_kwargs))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_stale_part(path: Path) -> bool:
    """True for a temp file whose writer is provably gone: written on this host by a pid no longer running.

    A `.part` name without the host-pid tag comes from an older ctxgen that did not tag its temp files: stale too.
    """
    m = _PART_RE.match(path.name)
    if m is None:
        return True
    return m.group("host") == _HOST and int(m.group("pid")) != os.getpid() and not _alive(int(m.group("pid")))


def clean_stale_parts(folder: Path) -> int:
    """Remove the temp files and folders killed writers left in `folder`; returns how many."""
    n = 0
    if folder.is_dir():
        for p in folder.glob(f".*{PART}"):
            if is_stale_part(p):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    _remove(p)
                n += 1
    return n
