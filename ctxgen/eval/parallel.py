"""Scoring on several devices: one process per `--devices` entry, or Ray tasks across machines.

Each worker builds its own RoleSet (models loaded once per worker) and writes its records into the shared
cache; the driver reads them back, so a worker that dies only leaves its images to the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ctxgen.batch.devices import worker_threads
from ctxgen.batch.plan import RAY_INSTALL
from ctxgen.core.errors import UsageError

log = logging.getLogger(__name__)


def shards(items: list, n: int) -> list[list]:
    """Round-robin split into at most n non-empty shards (neighbouring images go to different workers)."""
    out = [items[i::n] for i in range(max(1, n))]
    return [s for s in out if s]


def _worker(evaluator: Any, specs: dict, device: str, hub: bool, jobs: list, cache_root: str, chunk: int,
            threads: int) -> dict:
    import torch

    from ctxgen.eval.worker import score_jobs

    if device == "cpu":
        torch.set_num_threads(threads)
    return score_jobs(evaluator, specs, device, hub, jobs, Path(cache_root), chunk)


def _add(total: dict, part: dict) -> dict:
    return {k: total.get(k, 0) + part.get(k, 0) for k in set(total) | set(part)}


def run_pool(evaluator: Any, specs: dict, opts: Any, pending: list, cache_root: Path,
             step: Callable[[int], None]) -> dict:
    """One spawned process per device, each scoring a shard of the pending images."""
    import multiprocessing as mp

    parts = shards(pending, len(opts.devices))
    threads = worker_threads(len(parts))
    timings: dict = {}
    with ProcessPoolExecutor(max_workers=len(parts), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_worker, evaluator, specs, dev, opts.hub, part, str(cache_root), opts.chunk, threads):
                   len(part) for dev, part in zip(opts.devices, parts)}
        for fut in as_completed(futures):
            timings = _add(timings, fut.result())
            step(futures[fut])
    return timings


def run_ray(evaluator: Any, specs: dict, opts: Any, pending: list, cache_root: Path,
            step: Callable[[int], None]) -> dict:
    """One Ray task per shard (a GPU each when the devices are GPUs); the cache must be on a shared filesystem."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--backend ray: Ray is not installed; run {RAY_INSTALL}") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=opts.ray_address, include_dashboard=False, log_to_driver=False) if opts.ray_address else \
            ray.init(num_cpus=max(1, len(opts.devices) or 1), include_dashboard=False, log_to_driver=False)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        use_gpu = bool(gpus) and (not opts.devices or opts.devices[0].startswith("cuda") or opts.devices == ("all",))
        n = (gpus if use_gpu and opts.devices in ((), ("all",)) else len(opts.devices)) or 1
        task = ray.remote(num_gpus=1 if use_gpu else 0, num_cpus=1)(_worker)
        refs = {task.remote(evaluator, specs, "cuda" if use_gpu else "cpu", opts.hub, part, str(Path(cache_root)
                                                                                                 .resolve()),
                            opts.chunk, 1): len(part) for part in shards(pending, n)}
        timings: dict = {}
        remaining = list(refs)
        while remaining:
            ready, remaining = ray.wait(remaining, num_returns=1)
            timings = _add(timings, ray.get(ready[0]))
            step(refs[ready[0]])
        return timings
    finally:
        if started:
            ray.shutdown()
