"""SIGTERM (Slurm, Kubernetes, `kill`) behaves like Ctrl-C: a KeyboardInterrupt that unwinds, removes temp files
and ends with exit 130.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def install_interrupt_handlers() -> None:
    """SIGTERM raises KeyboardInterrupt, and SIGINT does too (Python's default); main thread only."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, raise_interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside the block (main thread only); the old handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
