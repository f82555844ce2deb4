"""Several workers on one machine: one spawned process per device, each fed the next scene when it is idle.

This is the parent side; `pool_worker` is the child side.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ctxgen.batch.devices import worker_threads
from ctxgen.batch.job import scene_seeds
from ctxgen.batch.pool_worker import worker_main
from ctxgen.batch.types import Batch, BatchEvents, BatchOptions, Record, WorkItem
from ctxgen.core.errors import EXIT_INTERRUPTED

log = logging.getLogger(__name__)
MAX_RESTARTS = 3  # replacements per device for workers that die (a crash-looping device is given up)
STOP_GRACE_S = 10.0  # how long stopped workers get to remove their temp files before SIGKILL


@dataclass
class _Slot:
    """The parent's view of one worker process."""

    device: str
    proc: Any = None
    conn: Any = None
    item: WorkItem | None = None
    records: list[Record] = field(default_factory=list)
    fatal: bool = False
    restarts: int = 0


class _Pool:
    """The parent: dispatches scenes to idle workers, writes every record, replaces workers that die."""

    def __init__(self, batch: Batch, opts: BatchOptions, events: BatchEvents):
        import multiprocessing

        self.ctx = multiprocessing.get_context("spawn")
        self.batch, self.opts, self.events = batch, opts, events
        self.queue: deque[WorkItem] = deque(batch.items)
        self.threads = worker_threads(len(batch.devices))
        self.slots = [_Slot(d) for d in batch.devices]

    def start(self, slot: _Slot) -> None:
        parent_end, child_end = self.ctx.Pipe()
        args = (child_end, self.opts, self.batch.identity, slot.device, self.threads, logging.getLogger().level,
                os.getpid())
        slot.proc = self.ctx.Process(target=worker_main, args=args, name=f"ctxgen-{slot.device}", daemon=True)
        slot.proc.start()
        child_end.close()
        slot.conn = parent_end

    def run(self) -> None:
        from multiprocessing.connection import wait

        for slot in self.slots:
            self.start(slot)
        while live := [s for s in self.slots if s.proc is not None]:
            ready = set(wait([s.conn for s in live] + [s.proc.sentinel for s in live]))
            for slot in live:
                if slot.conn in ready or slot.proc.sentinel in ready:
                    self.service(slot)
        if self.queue:
            self.events.notice(f"{len(self.queue)} scene(s) not rendered: no worker left (see the errors above)")

    def service(self, slot: _Slot) -> None:
        """Handle every message a worker sent, then notice if it exited."""
        while slot.conn.poll():
            try:
                kind, payload = slot.conn.recv()
            except Exception:  # EOF, or half a message from a killed worker: it is exiting or must
                slot.proc.join(STOP_GRACE_S)
                if slot.proc.is_alive():
                    slot.proc.kill()
                    slot.proc.join()
                break
            self.handle(slot, kind, payload)
        if not slot.proc.is_alive():
            self.on_exit(slot)

    def handle(self, slot: _Slot, kind: str, payload: Any) -> None:
        if kind == "record":
            slot.records.append(payload)
            self.events.record(payload)
            if self.events.stop() and self.queue:
                self.events.notice("stopping at the first failure (--fail-fast)")
                self.queue.clear()
            return
        shown = bool(slot.records) and slot.records[-1].error == payload
        if kind in ("done", "fatal") and slot.item is not None:
            self.finish_item(slot)
        if kind == "fatal":
            slot.fatal = True
            self.events.notice(f"worker {slot.device} stopped" + ("" if shown else f": {payload}"))
            return
        slot.item = self.queue.popleft() if self.queue else None  # "ready" or "done": the next scene, or stop
        if slot.item is not None:
            log.info("worker %d on %s: rendering %s", slot.proc.pid, slot.device, slot.item.path)
        try:
            slot.conn.send(slot.item)
        except OSError:  # it died meanwhile: the scene goes back to the queue, on_exit handles the worker
            if slot.item is not None:
                self.queue.appendleft(slot.item)
            slot.item = None

    def finish_item(self, slot: _Slot) -> None:
        self.events.scene_done(slot.item, slot.records)
        slot.item, slot.records = None, []

    def on_exit(self, slot: _Slot) -> None:
        """A worker exited: fail its scene in hand (if any), then start a replacement while work remains."""
        code = slot.proc.exitcode
        slot.proc.join()
        slot.conn.close()
        slot.proc = slot.conn = None
        if code in (EXIT_INTERRUPTED, -signal.SIGTERM, -signal.SIGINT):
            raise KeyboardInterrupt  # stopped by the job system: stop everything
        if slot.item is not None:
            msg = f"{slot.item.path}: worker {slot.device} died ({_exit_text(code)}) while rendering this scene"
            for seed in self.unreported_seeds(slot):
                rec = Record.make(slot.item.path, seed, "failed", error=msg, out_dir=str(slot.item.out_dir),
                                  device=slot.device)
                slot.records.append(rec)
                self.events.record(rec)
            self.finish_item(slot)
        if self.queue and not slot.fatal and slot.restarts < MAX_RESTARTS:
            slot.restarts += 1
            log.warning("starting a new worker on %s", slot.device)
            self.start(slot)

    def unreported_seeds(self, slot: _Slot) -> list[int | None]:
        from ctxgen.scene.model import load_scene

        try:
            scene = load_scene(slot.item.path)
        except Exception:
            return [None]
        if scene.seed_random and not self.opts.seeds:
            return [None]  # the worker drew (or reused) its own seeds: unknown here
        seen = {r.seed for r in slot.records}
        return [s for s in scene_seeds(scene, self.opts) if s not in seen] or [None]

    def stop(self) -> None:
        """Interrupt: SIGTERM every worker (they remove their temp files), SIGKILL any still alive after the grace."""
        live = [s for s in self.slots if s.proc is not None]
        for slot in live:
            slot.proc.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for slot in live:
            slot.proc.join(max(0.0, deadline - time.monotonic()))
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join()


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def run_pool(batch: Batch, opts: BatchOptions, events: BatchEvents) -> None:
    """One worker process per device ("spawn"), dynamic dispatch; Ctrl-C or SIGTERM stops them all (exit 130)."""
    pool = _Pool(batch, opts, events)
    try:
        pool.run()
    except BaseException:
        pool.stop()
        raise
