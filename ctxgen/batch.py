"""Batch rendering: work items, shards, failure isolation, manifest lines and the serial backend."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.markup import escape

from .console import _is_oom, debug_enabled, emit, err, result_line
from .errors import EXIT_FAILED, EXIT_OK, SceneError, UserError
from .fsio import clean_stale_parts
from .outputs import scene_out_dirs
from .scene import Scene, load_scene

log = logging.getLogger(__name__)
BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class BatchOptions:
    """Everything `ctxgen render` was asked to do, shared by every worker."""

    out: Path = Path("outputs")
    model: str | None = None
    base: str | None = None
    adapter: str | None = None
    seeds: tuple[int, ...] = ()
    samples: int = 1
    steps: int | None = None
    guidance: float | None = None
    device: str = "auto"
    dtype: str = "auto"
    text_len: int = 512
    fuse: bool = True
    overlays: bool = True
    force: bool = False
    manifest: Path | None = None
    fail_fast: bool = False
    sam_model: str = "large"
    json_out: bool = False
    attention: str = "auto"  # sdpa | flex | auto (chosen per device)
    memory: str = "full"  # full | balanced | low
    devices: str | None = None  # --devices: None = one worker on --device
    backend: str = "local"  # local | ray
    ray_address: str | None = None


@dataclass(frozen=True)
class WorkItem:
    """One scene to render and the folder its outputs go to."""

    index: int
    path: Path
    out_dir: Path


@dataclass(frozen=True)
class BatchPlan:
    """The checked work of one call: items (this shard only), the model identity and the worker devices."""

    items: tuple[WorkItem, ...]
    identity: dict[str, Any]
    devices: tuple[str, ...] = ()  # empty: one in-process worker


class ModelLoadError(Exception):
    """The model could not be loaded: fatal to the worker that tried (its scene is marked failed)."""


def scene_seeds(scene: Scene, opts: BatchOptions) -> tuple[int, ...]:
    """The seeds to render: --seed values or the scene's, extended by counting up to --samples images."""
    seeds = list(opts.seeds or scene.seeds)
    while len(seeds) < opts.samples:
        seeds.append(seeds[-1] + 1)
    return tuple(dict.fromkeys(seeds))


def parse_shard(spec: str) -> tuple[int, int]:
    """`i/N` with 0 <= i < N."""
    try:
        i_text, n_text = spec.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise UserError(f"--shard {spec!r}: expected i/N with integers, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {spec!r}: need N >= 1 and 0 <= i < N (i counts from 0)")
    return i, n


def select_shard(paths: list[Path], spec: str) -> list[Path]:
    """Rank scenes by a hash of their resolved path, deal ranks round-robin: N shards partition the set (sizes +-1)."""
    i, n = parse_shard(spec)
    ranked = sorted(range(len(paths)), key=lambda k: hashlib.sha256(str(paths[k].resolve()).encode()).digest())
    mine = {k for r, k in enumerate(ranked) if r % n == i}
    return [p for k, p in enumerate(paths) if k in mine]


def prepare_batch(paths: list[Path], opts: BatchOptions, shard: str | None = None) -> BatchPlan:
    """Check every option before any work (errors here are usage errors) and list this shard's items."""
    if opts.backend not in BACKENDS:
        raise UserError(f"--backend {opts.backend!r}: choose one of {', '.join(BACKENDS)}")
    if opts.backend == "ray" and importlib.util.find_spec("ray") is None:
        raise UserError("--backend ray: Ray is not installed; install it with `pip install 'ctxgen[ray]'`")
    dirs = scene_out_dirs(paths, opts.out)  # over all scenes, so every shard names folders the same way
    chosen = select_shard(paths, shard) if shard else paths
    items = tuple(WorkItem(i, p, dirs[p]) for i, p in enumerate(chosen))
    devices: tuple[str, ...] = ()
    if opts.devices is not None:
        from .pool import check_devices, parse_devices

        devices = parse_devices(opts.devices, for_ray=opts.backend == "ray")
        if opts.backend == "local":
            check_devices(devices)
    from .models.loading import model_identity
    from .models.registry import resolve_model_spec

    spec = resolve_model_spec(opts.model, opts.base, opts.adapter)
    device = "cpu" if opts.backend == "ray" else (devices[0] if devices else opts.device)
    return BatchPlan(items, model_identity(spec, device, opts.dtype, opts.fuse), devices)


def make_record(scene: Path | str, seed: int | None, status: str, **fields: Any) -> dict[str, Any]:
    """One manifest line: the same keys for every status, None where they do not apply."""
    rec = {"scene": str(scene), "seed": seed, "status": status, "outputs": [], "key": None, "out_dir": None,
           "device": None, "timings": {}, "seconds": None, "peak_memory": None, "peak_rss": _peak_rss(),
           "error": None, "warnings": [], "pid": os.getpid(),
           "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
    rec.update(fields)
    return rec


def _peak_rss() -> int | None:
    """This process's peak resident memory in bytes (the CPU counterpart of peak GPU memory)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def error_message(exc: BaseException) -> str:
    """A failure as text for the manifest and the console (scene issues one per line)."""
    if isinstance(exc, SceneError):
        return "\n".join(exc.issues)
    if isinstance(exc, (UserError, ModelLoadError)):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}"
    if _is_oom(exc):
        text += " (out of GPU memory; try --memory balanced or --memory low, a smaller size, or fewer references)"
    return text


def append_manifest(path: Path | None, record: dict[str, Any]) -> None:
    """Append one JSON line in a single write (O_APPEND), then fsync: lines never interleave or tear."""
    if path is None:
        return
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_scene_parts(out_dir: Path) -> int:
    """Remove temp files a killed run left in a scene folder and its overlay folders."""
    return clean_stale_parts(out_dir) + sum(clean_stale_parts(d) for d in out_dir.glob("*.debug"))


def process_scene(worker: Any, item: WorkItem, emit_record: Any) -> list[dict[str, Any]]:
    """Render one scene in isolation: every seed gets exactly one record; only interrupts and load failures escape."""
    clean_scene_parts(item.out_dir)
    done: list[dict[str, Any]] = []
    clock = [time.perf_counter()]

    def sink(rec: dict[str, Any]) -> None:
        now = time.perf_counter()
        rec["seconds"], clock[0] = round(now - clock[0], 4), now  # the records' seconds add up to the scene's time
        rec["scene"] = str(item.path)  # as the user gave it, whatever stage produced the record
        done.append(rec)
        emit_record(rec)

    scene = None
    worker.last_seeds = ()
    try:
        scene = load_scene(item.path)
        worker.render_scene(scene, item.out_dir, sink)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one failing scene must not stop the batch
        if debug_enabled():
            log.error("%s failed", item.path, exc_info=exc)
        seeds = worker.last_seeds or (scene_seeds(scene, worker.opts) if scene is not None else (None,))
        seen = {r["seed"] for r in done}
        for s in (s for s in seeds if s not in seen):
            sink(make_record(item.path, s, "failed", error=error_message(exc), out_dir=str(item.out_dir)))
        if isinstance(exc, ModelLoadError):
            raise
    return done


class Reporter:
    """The one writer of manifest lines and results: tallies statuses, prints outputs and errors."""

    def __init__(self, opts: BatchOptions):
        self.opts = opts
        self.counts = {"ok": 0, "skipped": 0, "failed": 0}
        self._warned: set[str] = set()
        self._last_error: tuple[str, str] | None = None

    def add(self, rec: dict[str, Any]) -> None:
        append_manifest(self.opts.manifest, rec)
        self.counts[rec["status"]] += 1
        if rec["scene"] not in self._warned:
            self._warned.add(rec["scene"])
            for line in rec.get("warnings", []):
                err.print(f"[yellow]warning[/] {escape(rec['scene'])}: {escape(line)}")
        if rec["status"] == "failed" and (rec["scene"], rec["error"]) != self._last_error:
            self._last_error = (rec["scene"], rec["error"])
            for line in str(rec["error"]).splitlines():
                err.print(f"[red]error[/] {escape(line)}")
        if rec["status"] == "ok":
            self._timings(rec)
        if not self.opts.json_out:
            for file in rec["outputs"]:
                result_line(file)

    @staticmethod
    def _timings(rec: dict[str, Any]) -> None:
        """Per-stage seconds of one image: on an interactive stderr always, else in the log (-v)."""
        stages = ("load_s", "plan_s", "condition_s", "denoise_s", "decode_s", "write_s")
        parts = [f"{k[:-2]} {rec['timings'][k]:.2f}s" for k in stages if rec.get("timings", {}).get(k)]
        line = f"{Path(rec['scene']).name} seed {rec['seed']}: " + ", ".join(parts)
        if err.is_terminal:
            err.print(f"[dim]{escape(line)}[/]")
        else:
            log.info(line)

    def scene_done(self, item: WorkItem, records: list[dict[str, Any]]) -> None:
        if self.opts.json_out:
            ok = bool(records) and all(r["status"] != "failed" for r in records)
            emit({"scene": str(item.path), "ok": ok, "results": records})

    def stop_now(self) -> bool:
        """--fail-fast after a failure."""
        return self.opts.fail_fast and self.counts["failed"] > 0

    def finish(self) -> int:
        c = self.counts
        err.print(f"{c['ok']} rendered, {c['skipped']} skipped, {c['failed']} failed")
        return EXIT_FAILED if c["failed"] else EXIT_OK


def run_batch(plan: BatchPlan, opts: BatchOptions) -> int:
    """Render the plan's items on the chosen backend; SIGTERM counts as an interrupt (exit 130)."""
    reporter = Reporter(opts)
    if not plan.items:
        err.print("no scenes in this shard; nothing to do")
        return EXIT_OK
    with sigterm_as_interrupt():
        if opts.backend == "ray":
            from .ray_backend import run_ray

            run_ray(plan, opts, reporter)
        elif plan.devices:
            from .pool import run_pool

            run_pool(plan, opts, reporter)
        else:
            from .worker import run_serial

            run_serial(plan, opts, reporter)
    return reporter.finish()


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM (sent by Slurm and Kubernetes) raises KeyboardInterrupt like Ctrl-C: temp files removed, exit 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
