"""Run one benchmark over a folder of images: locate, cache, score in chunks role by role, aggregate, write.

Resumable: each image's record is cached under `OUT/cache/` keyed by the image's sha256, its case, the role
models and the options; a re-run scores only what is missing. `metrics.json` holds the per-image records, the
aggregate exactly as E1-E3 define it, and the images that were missing or could not be scored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxgen.core.fsio import write_json
from ctxgen.eval import aggregate
from ctxgen.eval.cache import ResultCache, image_key
from ctxgen.eval.worker import score_jobs
from ctxgen.vision.roles import RoleSet

log = logging.getLogger(__name__)
SUMMARIES: dict[str, Callable[[list[dict]], dict]] = {
    "lamic": aggregate.lamic_summary, "cocomig": aggregate.cocomig_summary,
    "layoutsam": aggregate.layoutsam_summary, "identity": lambda recs: identity_summary(recs)}


@dataclass(frozen=True)
class RunOptions:
    out: Path
    device: str = "cpu"
    devices: tuple[str, ...] = ()
    backend: str = "serial"  # serial | pool | ray
    ray_address: str | None = None
    hub: bool = False
    chunk: int = 8
    force: bool = False


@dataclass
class RunResult:
    path: Path
    summary: dict
    records: list[dict]
    missing: list[str]
    failed: list[dict]
    scored_now: int
    timings: dict = field(default_factory=dict)


def run_eval(evaluator: Any, specs: dict, opts: RunOptions, progress: Callable[[int, int], None] | None = None,
             ) -> RunResult:
    """Locate, reuse cached records, score the rest (serial, one process per device, or Ray), write metrics.json."""
    jobs = evaluator.jobs()
    present = [j for j in jobs if j.image is not None]
    missing = [j.name for j in jobs if j.image is None]
    idents = RoleSet({r: specs[r] for r in evaluator.roles}).idents()
    keyed = [(j, image_key(evaluator.bench, j.image, evaluator.fingerprint(j), idents, evaluator.options()))
             for j in present]
    cache = ResultCache(Path(opts.out) / "cache")
    pending = [(j, k) for j, k in keyed if opts.force or cache.get(k) is None]
    log.info("%s: %d images, %d cached, %d to score, %d missing", evaluator.bench, len(present),
             len(present) - len(pending), len(pending), len(missing))
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], len(pending))

    timings: dict = {}
    if pending:
        timings = _dispatch(evaluator, specs, opts, pending, cache.root, step)
    records, failed = [], []
    for job, key in keyed:
        rec = cache.get(key)
        if rec is None:
            rec = cache.get(key + ".failed") or {"image": str(job.image), "error": "not scored (a worker stopped)"}
            failed.append({"image": str(job.image), "error": rec.get("error", "")})
        records.append(rec)
    summary = SUMMARIES[evaluator.bench](records)
    path = Path(opts.out) / "metrics.json"
    write_json(path, {"benchmark": evaluator.bench, "models": idents, "options": evaluator.options(),
                      "counts": {"cases": len({j.case_id for j in jobs}), "images": len(jobs),
                                 "scored": len(records) - len(failed), "missing": len(missing), "failed": len(failed)},
                      "summary": summary, "missing": missing, "failed": failed, "images": records})
    return RunResult(path, summary, records, missing, failed, len(pending), timings)


def _dispatch(evaluator: Any, specs: dict, opts: RunOptions, pending: list, cache_root: Path,
              step: Callable[[int], None]) -> dict:
    if opts.backend == "serial" or len(opts.devices) <= 1 and opts.backend != "ray":
        device = opts.devices[0] if opts.devices else opts.device
        return score_jobs(evaluator, specs, device, opts.hub, pending, cache_root, opts.chunk, step)
    from ctxgen.eval.parallel import run_pool, run_ray

    runner = run_ray if opts.backend == "ray" else run_pool
    return runner(evaluator, specs, opts, pending, cache_root, step)


def identity_summary(records: list[dict]) -> dict:
    """Mean DINO and CLIP-I over instances, overall and per scene (E4)."""
    scored = [r for r in records if "error" not in r]
    out: dict[str, dict] = {}
    for name, recs in [("all", scored)] + [(s, [r for r in scored if r["scene"] == s])
                                            for s in sorted({r["scene"] for r in scored})]:
        inst = [i for r in recs for i in r["instances"]]
        out[name] = {k: sum(i[k] for i in inst) / len(inst) for k in ("dino", "clip") if inst and k in inst[0]}
        out[name]["instances"] = len(inst)
    return out
