"""Scale-out for construct stages: a spawned process per `--devices` entry, or Ray Data actors across machines.

The same pattern as `render`: each worker (process or actor) builds one `ItemRunner`, so it loads the stage's
models once, takes the next item when idle, writes it into the shared run folder and returns its manifest entry;
the driver writes the manifest. Pool workers die with their parent (`ctxgen.batch.pool_worker.die_with_parent`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctxgen.batch.devices import worker_threads
from ctxgen.batch.plan import RAY_INSTALL
from ctxgen.core.errors import UsageError
from ctxgen.dataset.construct.config import ConstructConfig, config_from_dict, config_to_dict

log = logging.getLogger(__name__)
_RUNNER: Any = None  # the worker process's ItemRunner (models loaded once)


def _init(doc: dict, source: str | None, run: str, stage: str, devices: Any, threads: int, parent: int) -> None:
    import torch

    from ctxgen.batch.pool_worker import die_with_parent
    from ctxgen.dataset.construct.runner import ItemRunner

    global _RUNNER
    die_with_parent(parent)
    device = devices.get()
    if device == "cpu":
        torch.set_num_threads(threads)
    _RUNNER = ItemRunner(config_from_dict(doc, source), Path(run), stage, device)


def _work(task: Any) -> dict:
    return _RUNNER(task)


def run_pool(cfg: ConstructConfig, run: Path, stage: str, todo: list, devices: tuple[str, ...],
             record: Callable[[dict], None]) -> None:
    """One spawned worker per device, items dispatched one at a time (an idle worker takes the next)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    for device in devices:
        queue.put(device)
    doc, source = config_to_dict(cfg)
    args = (doc, source, str(run), stage, queue, worker_threads(len(devices)), os.getpid())
    pool = ProcessPoolExecutor(max_workers=len(devices), mp_context=ctx, initializer=_init, initargs=args)
    try:
        futures = {pool.submit(_work, task): task for task in todo}
        for fut in as_completed(futures):
            try:
                record(fut.result())
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory): its items are redone later
                task = futures[fut]
                record({"stage": stage, "item": task.id, "key": task.key, "status": "failed", "kept": False,
                        "error": f"worker died ({exc}); run the stage again"})
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        raise
    pool.shutdown(wait=True)


class ConstructActor:
    """A Ray Data callable class: one ItemRunner per actor; each call runs one item row."""

    def __init__(self, doc: dict, source: str | None, run: str, stage: str, use_gpu: bool, threads: int):
        import torch

        from ctxgen.dataset.construct.runner import ItemRunner

        if not use_gpu:
            torch.set_num_threads(threads)
        self.runner = ItemRunner(config_from_dict(doc, source), Path(run), stage, "cuda" if use_gpu else "cpu")

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        from ctxgen.dataset.construct.runner import Task

        out = [json.dumps(self.runner(Task(str(i), str(k)))) for i, k in zip(batch["id"], batch["key"])]
        return {"entry": np.array(out, dtype=object)}


def run_ray(cfg: ConstructConfig, run: Path, stage: str, todo: list, devices: tuple[str, ...],
            address: str | None, record: Callable[[dict], None]) -> None:
    """Ray Data: from_items(item rows) -> map_batches(ConstructActor); the run folder must be shared."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError(f"--backend ray: Ray is not installed; run {RAY_INSTALL}") from None
    from ctxgen.batch.ray import actor_count

    started = not ray.is_initialized()
    if started:
        n_cpu = len(devices) if devices and devices[0] == "cpu" else 1
        ray.init(address=address, log_to_driver=False, include_dashboard=False) if address else \
            ray.init(num_cpus=max(worker_threads(1), n_cpu), include_dashboard=False, log_to_driver=False)
    try:
        n, use_gpu = actor_count(devices, int(ray.cluster_resources().get("GPU", 0)))
        cpus = 1 if (use_gpu or address) else worker_threads(n)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        doc, source = config_to_dict(cfg)
        rows = [{"id": t.id, "key": t.key} for t in todo]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            ConstructActor, batch_size=1, num_gpus=1 if use_gpu else 0, num_cpus=cpus,
            compute=ray.data.ActorPoolStrategy(size=n, max_tasks_in_flight_per_actor=1),
            fn_constructor_kwargs={"doc": doc, "source": source, "run": str(Path(run).resolve()), "stage": stage,
                                   "use_gpu": use_gpu, "threads": cpus})
        for row in ds.iter_rows():
            record(json.loads(row["entry"]))
    finally:
        if started:
            ray.shutdown()
