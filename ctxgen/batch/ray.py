"""Many machines: the scene worker as a Ray Data callable class, one GPU (or a CPU slot) per actor."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from ctxgen.batch.devices import worker_threads
from ctxgen.batch.job import SceneWorker, process_scene
from ctxgen.batch.plan import RAY_INSTALL
from ctxgen.batch.types import Batch, BatchEvents, BatchOptions, ModelLoadError, Record, WorkItem
from ctxgen.core.errors import UsageError
from ctxgen.models.registry import ModelIdentity

log = logging.getLogger(__name__)
INSTALL_HINT = f"run {RAY_INSTALL}"
QUIET_LOGGERS = ("ray", "ray.data")


class RenderActor:
    """Loads the model once per actor; each call renders one scene row and returns its records as JSON."""

    def __init__(self, opts: BatchOptions, identity: ModelIdentity, use_gpu: bool, threads: int):
        import torch

        from ctxgen.models.loading import localize_identity

        device = "cuda" if use_gpu else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES to this actor's GPU
        if not use_gpu:
            torch.set_num_threads(threads)
        identity = localize_identity(identity, device, opts.render.dtype)
        self.worker = SceneWorker(replace(opts, device=device), identity=identity)
        self.load_error: str | None = None

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out = []
        for index, path, out_dir in zip(batch["index"], batch["path"], batch["out_dir"]):
            item = WorkItem(int(index), Path(path), Path(out_dir))
            records: list[Record] = []
            if self.load_error is not None:  # never retry a failed load: fail the scene at once
                records.append(Record.make(item.path, None, "failed", error=self.load_error, out_dir=str(item.out_dir)))
            else:
                try:
                    process_scene(self.worker, item, records.append)
                except ModelLoadError as exc:
                    self.load_error = str(exc)
            out.append(json.dumps([r.as_dict() for r in records]))
        return {"index": np.asarray(batch["index"]), "records": np.array(out, dtype=object)}


def actor_count(devices: tuple[str, ...], cluster_gpus: int) -> tuple[int, bool]:
    """(actors, one GPU each?) from --devices: none -> every GPU (else one CPU actor); all; cpu:N; a GPU list."""
    if not devices:
        return (cluster_gpus, True) if cluster_gpus else (1, False)
    if devices == ("all",):
        if not cluster_gpus:
            raise UsageError("--devices all: the Ray cluster has no GPU; use --devices cpu:N for N CPU actors")
        return cluster_gpus, True
    if "mps" in devices:
        raise UsageError("--devices mps: not available with --backend ray; use cpu:N or GPUs")
    use_gpu = devices[0].startswith("cuda")
    if use_gpu and len(devices) > cluster_gpus:
        raise UsageError(f"--devices: {len(devices)} GPU actors asked for but the Ray cluster has {cluster_gpus} GPU(s)")
    return len(devices), use_gpu


def _init_ray(ray: Any, address: str | None, n_cpu_actors: int) -> bool:
    """Join `address`, or start a small local Ray; True when this call started it (and must shut it down)."""
    level = logging.INFO if logging.getLogger().level <= logging.INFO else logging.ERROR  # Ray is chatty
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=level)
    else:
        ray.init(num_cpus=max(worker_threads(1), n_cpu_actors), include_dashboard=False, log_to_driver=False,
                 logging_level=level)
    return True


def run_ray(batch: Batch, opts: BatchOptions, events: BatchEvents) -> None:
    """Ray Data: from_items(scene rows) -> map_batches(RenderActor) -> the driver reports every row."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError(f"--backend ray: Ray is not installed; {INSTALL_HINT}") from None

    cpu_guess = len(batch.devices) if batch.devices and batch.devices[0] == "cpu" else 1
    started = _init_ray(ray, opts.ray_address, cpu_guess)
    try:
        n, use_gpu = actor_count(batch.devices, int(ray.cluster_resources().get("GPU", 0)))
        cpus = 1 if (use_gpu or opts.ray_address) else worker_threads(n)
        log.info("ray: %d actor(s), %s each", n, "one GPU" if use_gpu else f"{cpus} CPU(s)")
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        rows = [{"index": it.index, "path": str(it.path.resolve()), "out_dir": str(it.out_dir.resolve())}
                for it in batch.items]  # absolute paths: actors on other nodes read and write the shared filesystem
        pool = ray.data.ActorPoolStrategy(size=n, max_tasks_in_flight_per_actor=1)  # an idle actor takes the next scene
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            RenderActor, batch_size=1, compute=pool, num_gpus=1 if use_gpu else 0, num_cpus=cpus,
            fn_constructor_kwargs={"opts": opts, "identity": batch.identity, "use_gpu": use_gpu, "threads": cpus})
        by_index = {it.index: it for it in batch.items}
        for row in ds.iter_rows():
            records = [Record.from_dict(d) for d in json.loads(row["records"])]
            for rec in records:
                events.record(rec)
            events.scene_done(by_index[int(row["index"])], records)
            if events.stop():
                events.notice("stopping at the first failure (--fail-fast)")
                break
    finally:
        if started:
            ray.shutdown()
