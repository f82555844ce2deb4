"""Several workers on one machine: one spawned process per device, each fed the next scene when it is idle."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from rich.markup import escape

from .batch import (BatchOptions, BatchPlan, ModelLoadError, Reporter, WorkItem, error_message, make_record,
                    process_scene, scene_seeds)
from .console import err
from .errors import EXIT_INTERRUPTED, UserError
from .worker import progress_bar

log = logging.getLogger(__name__)
MAX_RESTARTS = 3  # replacements per device for workers that die (a crash-looping device is given up)
STOP_GRACE_S = 10.0  # how long stopped workers get to remove their temp files before SIGKILL
_DEVICE = re.compile(r"(cpu|mps|cuda(:\d+)?|\d+)")


def parse_devices(spec: str, for_ray: bool = False) -> tuple[str, ...]:
    """`all`, `cpu:N` or a comma list (0,1 / cuda:0,cuda:1 / cpu,cpu / mps): one device per worker."""
    text = spec.strip().lower().replace(" ", "")
    hint = "use all, cpu:N, or a comma list such as 0,1 or cuda:0,cuda:1 or cpu,cpu"
    if text == "all":
        if for_ray:
            return ("all",)  # every GPU of the Ray cluster, counted there
        n = _cuda_count()
        if n == 0:
            raise UserError("--devices all: no CUDA GPU found; use --devices cpu:N for N CPU workers")
        return tuple(f"cuda:{i}" for i in range(n))
    m = re.fullmatch(r"cpu:(\d+)", text)
    if m:
        if not 1 <= int(m.group(1)) <= 256:
            raise UserError(f"--devices {spec!r}: cpu:N needs 1 <= N <= 256")
        return ("cpu",) * int(m.group(1))
    items = text.split(",")
    if not all(_DEVICE.fullmatch(t) for t in items):
        raise UserError(f"--devices {spec!r}: not a device list; {hint}")
    devices = tuple(f"cuda:{t}" if t.isdigit() else "cuda:0" if t == "cuda" else t for t in items)
    if for_ray and len({d.split(":")[0] for d in devices}) > 1:
        raise UserError(f"--devices {spec!r}: with --backend ray use either GPUs (all, 0,1,...) or cpu:N, not both")
    return devices


def check_devices(devices: tuple[str, ...]) -> None:
    """Every CUDA index exists and MPS is available where asked (before any worker starts)."""
    cuda = [int(d.split(":")[1]) for d in devices if d.startswith("cuda")]
    if cuda:
        n = _cuda_count()
        bad = [i for i in cuda if i >= n]
        if bad:
            raise UserError(f"--devices: cuda:{bad[0]} does not exist ({n} CUDA GPU(s) visible); use 0..{n - 1}")
    if "mps" in devices:
        import torch

        if not torch.backends.mps.is_available():
            raise UserError("--devices: mps asked for but MPS is not available; use cpu")


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def worker_threads(n_workers: int) -> int:
    """Torch threads per worker: the cores this process may use, split evenly."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, n_workers))


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def worker_main(conn: Any, opts: BatchOptions, identity: dict[str, Any], device: str, threads: int, level: int) -> None:
    """A worker process: ask for a scene, render it, send its records, repeat until sent None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us with SIGTERM
    signal.signal(signal.SIGTERM, _raise_interrupt)  # -> KeyboardInterrupt: temp files removed while unwinding
    logging.basicConfig(level=level, format=f"%(levelname)s [worker {device} %(process)d] %(message)s", force=True)
    for noisy in ("diffusers", "transformers", "httpx", "huggingface_hub", "peft"):
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))
    code = 0
    try:
        _serve(conn, opts, identity, device, threads)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except (EOFError, BrokenPipeError):
        pass  # the parent is gone: stop after the scene in hand
    except Exception as exc:  # a worker that cannot start (device, dtype) reports once and stops
        conn.send(("fatal", error_message(exc)))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # nothing is left to clean up; skips seconds of interpreter teardown (torch, transformers)


def _serve(conn: Any, opts: BatchOptions, identity: dict[str, Any], device: str, threads: int) -> None:
    import torch

    from .worker import SceneWorker, localize_identity

    torch.set_num_threads(threads)
    worker = SceneWorker(replace(opts, device=device), identity=localize_identity(identity, device, opts.dtype))
    conn.send(("ready", None))
    while (item := conn.recv()) is not None:
        try:
            process_scene(worker, item, lambda rec: conn.send(("record", rec)))
        except ModelLoadError as exc:
            conn.send(("fatal", str(exc)))
            return
        conn.send(("done", None))


@dataclass
class _Slot:
    """The parent's view of one worker process."""

    device: str
    proc: Any = None
    conn: Any = None
    item: WorkItem | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    fatal: bool = False
    restarts: int = 0


class _Pool:
    """The parent: dispatches scenes to idle workers, writes every record, replaces workers that die."""

    def __init__(self, plan: BatchPlan, opts: BatchOptions, reporter: Reporter):
        import multiprocessing

        self.ctx = multiprocessing.get_context("spawn")
        self.plan, self.opts, self.reporter = plan, opts, reporter
        self.queue: deque[WorkItem] = deque(plan.items)
        self.threads = worker_threads(len(plan.devices))
        self.slots = [_Slot(d) for d in plan.devices]
        self.bar = lambda: None

    def start(self, slot: _Slot) -> None:
        parent_end, child_end = self.ctx.Pipe()
        args = (child_end, self.opts, self.plan.identity, slot.device, self.threads, logging.getLogger().level)
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
            err.print(f"{len(self.queue)} scene(s) not rendered: no worker left (see the errors above)")

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
            self.reporter.add(payload)
            if self.reporter.stop_now() and self.queue:
                err.print("stopping at the first failure (--fail-fast)")
                self.queue.clear()
            return
        shown = bool(slot.records) and slot.records[-1]["error"] == payload
        if kind in ("done", "fatal") and slot.item is not None:
            self.finish_item(slot)
        if kind == "fatal":
            slot.fatal = True
            err.print(f"worker {slot.device} stopped" + ("" if shown else f": {escape(str(payload))}"))
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
        self.reporter.scene_done(slot.item, slot.records)
        self.bar()
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
            msg = f"worker {slot.device} died ({_exit_text(code)}) while rendering this scene"
            for seed in self.unreported_seeds(slot):
                rec = make_record(slot.item.path, seed, "failed", error=msg, out_dir=str(slot.item.out_dir),
                                  device=slot.device)
                slot.records.append(rec)
                self.reporter.add(rec)
            self.finish_item(slot)
        if self.queue and not slot.fatal and slot.restarts < MAX_RESTARTS:
            slot.restarts += 1
            log.warning("starting a new worker on %s", slot.device)
            self.start(slot)

    def unreported_seeds(self, slot: _Slot) -> list[int | None]:
        from .scene import load_scene

        try:
            scene = load_scene(slot.item.path)
        except Exception:
            return [None]
        if scene.seed_random and not self.opts.seeds:
            return [None]  # the worker drew (or reused) its own seeds: unknown here
        seen = {r["seed"] for r in slot.records}
        return [s for s in scene_seeds(scene, self.opts) if s not in seen] or [None]

    def stop(self) -> None:
        """Interrupt: SIGTERM every worker (they remove their temp files), SIGKILL any still alive after the grace."""
        import time

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


def run_pool(plan: BatchPlan, opts: BatchOptions, reporter: Reporter) -> None:
    """One worker process per device ("spawn"), dynamic dispatch; Ctrl-C or SIGTERM stops them all (exit 130)."""
    pool = _Pool(plan, opts, reporter)
    with progress_bar(len(plan.items), steps=False) as (bar, _):
        pool.bar = bar
        try:
            pool.run()
        except BaseException:
            pool.stop()
            raise
