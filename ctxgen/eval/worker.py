"""Scoring a list of images with one set of loaded roles, chunk by chunk, role by role; records into the cache."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ctxgen.core.errors import UserError
from ctxgen.eval.cache import ResultCache
from ctxgen.eval.common import Job, State, open_rgb
from ctxgen.vision.roles import RoleSet

_EMPTY = np.zeros((1, 1, 3), dtype=np.uint8)  # the pixels of an image that could not be read


def score_jobs(evaluator: Any, specs: dict, device: str, hub: bool, jobs: list[tuple[Job, str]], cache_root: Path,
               chunk: int = 8, progress: Callable[[int], None] | None = None) -> dict:
    """Score (job, cache key) pairs in chunks with one RoleSet (each model loaded once); returns timings."""
    roles = RoleSet({r: specs[r] for r in evaluator.roles}, device=device, hub=hub)
    cache = ResultCache(cache_root)
    timings = {"decode": 0.0, "score": 0.0, "images": 0}
    for start in range(0, len(jobs), chunk):
        part = jobs[start:start + chunk]
        states = []
        t0 = time.perf_counter()
        for job, _ in part:
            record = {"image": str(job.image), "case": job.case_id, "sample": job.sample, "group": job.group,
                      **evaluator.new_record(job)}
            try:
                states.append(State(job, open_rgb(job.image), record))
            except UserError as exc:
                states.append(State(job, _EMPTY, {**record, "error": str(exc)}))
        t1 = time.perf_counter()
        evaluator.score(states, roles)
        t2 = time.perf_counter()
        timings["decode"] += t1 - t0
        timings["score"] += t2 - t1
        timings["images"] += len(part)
        for st, (_, key) in zip(states, part):
            cache.put(key if "error" not in st.record else key + ".failed", st.record)
        if progress is not None:
            progress(len(part))
    return timings
