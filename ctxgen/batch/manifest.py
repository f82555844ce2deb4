"""The JSONL manifest: one line per scene and seed, appended in a single write so lines never tear or interleave."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ctxgen.batch.types import Record
from ctxgen.core.errors import OutputError
from ctxgen.core.fsio import file_mode


class ManifestError(OutputError):
    """The manifest could not be written: fatal to the run (a record that is not kept would be lost)."""


class Manifest:
    """An append-only JSONL file, checked before any work; a failed write is an OutputError (exit 1)."""

    def __init__(self, path: Path, hint: str = "free disk space or choose another --manifest path"):
        self.path = Path(path)
        self.hint = hint  # the fix a failed write suggests

    def check(self) -> None:
        """The manifest must be a regular file we can append to (or one we can create)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, file_mode())
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write the manifest ({exc.strerror or exc}); "
                              "choose another --manifest path") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OutputError(f"{self.path}: the manifest must be a regular file (this is a device, pipe or "
                                  "socket); choose another --manifest path")
        finally:
            os.close(fd)

    def append(self, record: Record) -> None:
        """Append one record as a JSON line."""
        self.append_json(record.as_dict())

    def append_json(self, obj: dict) -> None:
        """Append one JSON line with one write (O_APPEND), then fsync."""
        line = (json.dumps(obj, sort_keys=True) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, file_mode())
            try:
                append_line(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            raise ManifestError(f"{self.path}: manifest write failed ({exc.strerror or exc}); {self.hint}") from None


def append_line(fd: int, line: bytes) -> None:
    """One write of the whole line, then fsync (a short write is an error: the line would be torn)."""
    if os.write(fd, line) != len(line):
        raise OSError(0, "short write")
    os.fsync(fd)
