"""The next micro-batch's example prepared in a background thread while the current one trains.

Reading the record, the layout and masks (numpy, Pillow) and the VAE / text encoding of the next example overlap
the transformer's forward and backward. Every draw is keyed by (seed, step, index), so the order in which
examples are prepared never changes a number.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

Key = tuple[int, int]  # (step, index)


class Prefetcher:
    """get(key) returns prepare(*key), computed ahead when `ahead(key)` was called first."""

    def __init__(self, prepare: Callable[[int, int], Any], enabled: bool = True):
        self.prepare = prepare
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctxgen-prefetch") if enabled else None
        self.pending: tuple[Key, Future] | None = None

    def get(self, key: Key) -> Any:
        if self.pending is not None and self.pending[0] == key:
            future, self.pending = self.pending[1], None
            return future.result()
        self.wait()
        return self.prepare(*key)

    def ahead(self, key: Key) -> None:
        """Start preparing `key` (no-op without a thread)."""
        if self.pool is not None:
            self.wait()
            self.pending = (key, self.pool.submit(self.prepare, *key))

    def wait(self) -> None:
        """Let the pending preparation finish (before previews or saving touch the same models); errors wait for get."""
        if self.pending is not None:
            self.pending[1].exception()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.pending = None
