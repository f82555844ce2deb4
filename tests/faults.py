"""Fault injection shared by the test tiers (torch-free): a disk that fills up during atomic writes."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ctxgen.core import fsio


def fail_writes(monkeypatch: pytest.MonkeyPatch, when: Callable[[Path, int], bool]) -> list[Path]:
    """Atomic writes for which `when(path, call_number)` holds put a few bytes in their temp file, then fail with ENOSPC.

    Returns the list of every path written through `fsio.stage` (every ctxgen output goes through it), in call order
    (call numbers start at 1).
    """
    original, calls = fsio.stage, []

    def writer(path, write):
        calls.append(Path(path))
        if not when(Path(path), len(calls)):
            return original(path, write)

        def partial(fh):
            fh.write(b"\x89PNG partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return original(path, partial)

    monkeypatch.setattr(fsio, "stage", writer)
    return calls
