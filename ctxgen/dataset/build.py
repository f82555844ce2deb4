"""Writing a dataset folder: chunked, resumable, atomic, the same bytes from 1 or N worker processes. Torch-free.

The inputs are cut into chunks (one per shard). Each chunk becomes `.staging/chunk-K.parquet` (temp + rename)
beside `chunk-K.json` (its key, ids and skip log); a re-run skips chunks whose key matches, so an interrupted
`pack` / `import-imig` resumes without duplicating records. When every chunk is done, the non-empty ones are
renamed to `{split}-{k:05d}-of-{n:05d}.parquet`, the skip log is written to `skipped.jsonl` and `dataset.json`
last. A chunk's bytes depend only on its inputs, never on which process wrote it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxgen.core.errors import UserError
from ctxgen.core.fsio import clean_stale_parts, write_json, write_text
from ctxgen.dataset.arrow import FORMAT
from ctxgen.dataset.record import SCHEMA_VERSION
from ctxgen.dataset.shards import check_writable, shard_name, write_shard

log = logging.getLogger(__name__)
MANIFEST, STAGING, SKIPS = "dataset.json", ".staging", "skipped.jsonl"
Progress = Callable[[int, int], None]  # (inputs done, inputs in all)


Producer = Callable[[tuple, dict], tuple[list, list[dict]]]  # (items, options) -> (records, log)


@dataclass(frozen=True)
class Job:
    """One chunk of inputs: picklable (the producer is a module-level function), so a spawned worker can run it."""

    producer: Producer
    index: int
    items: tuple
    options: tuple[tuple[str, Any], ...]
    key: str


@dataclass(frozen=True)
class ChunkResult:
    index: int
    key: str
    ids: tuple[str, ...]
    subsets: dict[str, int]
    log: tuple[dict, ...]  # skip and note entries, JSON objects


@dataclass(frozen=True)
class BuildSummary:
    out: Path
    records: int
    inputs: int
    shards: tuple[Path, ...]
    subsets: dict[str, int]
    log: tuple[dict, ...]
    up_to_date: bool = False
    finished: bool = True  # False when --shard left the renaming to a later run
    reused_chunks: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def plan_jobs(producer: Producer, items: Sequence, options: dict, per_chunk: int) -> list[Job]:
    """Cut the inputs into chunks of `per_chunk` (the same cut on every machine)."""
    opts = tuple(sorted(options.items()))
    name = f"{producer.__module__}.{producer.__qualname__}"
    jobs = []
    for index, start in enumerate(range(0, len(items), per_chunk)):
        chunk = tuple(items[start:start + per_chunk])
        jobs.append(Job(producer, index, chunk, opts, digest([FORMAT, SCHEMA_VERSION, name, index, chunk, opts])))
    return jobs


def run_job(job: Job, staging: Path) -> ChunkResult:
    """Produce one chunk's records and write its staging files (json first, the parquet last marks it done)."""
    records, entries = job.producer(job.items, dict(job.options))
    result = ChunkResult(job.index, job.key, tuple(r.id for r in records), dict(Counter(r.subset for r in records)),
                         tuple(entries))
    write_json(staging / f"chunk-{job.index:05d}.json", _result_doc(result))
    write_shard(staging / f"chunk-{job.index:05d}.parquet", records, {"chunk": job.index, "key": job.key})
    return result


def _result_doc(r: ChunkResult) -> dict:
    return {"index": r.index, "key": r.key, "ids": list(r.ids), "subsets": r.subsets, "log": list(r.log)}


def _done_chunk(staging: Path, job: Job) -> ChunkResult | None:
    """The result of a chunk a previous run finished with the same key, else None."""
    doc_path, shard = staging / f"chunk-{job.index:05d}.json", staging / f"chunk-{job.index:05d}.parquet"
    if not (doc_path.is_file() and shard.is_file()):
        return None
    try:
        import pyarrow.parquet as pq

        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        meta = json.loads((pq.read_schema(shard).metadata or {}).get(b"ctxgen_build", b"{}"))
    except Exception:  # a damaged leftover is simply redone
        return None
    if doc.get("key") != job.key or meta.get("key") != job.key:
        return None
    return ChunkResult(job.index, job.key, tuple(doc["ids"]), doc["subsets"], tuple(doc["log"]))


def _run_all(jobs: list[Job], staging: Path, workers: int, progress: Progress | None, total: int,
             done_inputs: int) -> list[ChunkResult]:
    """Run the chunks here (workers <= 1) or in spawned processes; results in completion order."""
    results = []
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            results.append(run_job(job, staging))
            done_inputs += len(job.items)
            if progress:
                progress(done_inputs, total)
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(run_job, job, staging): job for job in jobs}
        for fut in as_completed(futures):
            results.append(fut.result())
            done_inputs += len(futures[fut].items)
            if progress:
                progress(done_inputs, total)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def build(out: Path, jobs: list[Job], split: str = "train", workers: int = 1, shard: tuple[int, int] | None = None,
          force: bool = False, progress: Progress | None = None, source: dict | None = None) -> BuildSummary:
    """Run every chunk not yet done (this machine's when `shard` = (i, n)), then publish the shards."""
    out = Path(out)
    check_writable(out)
    key = digest([split, [j.key for j in jobs]])
    ready = _existing(out, key, force)
    if ready is not None:
        return ready
    staging = out / STAGING
    check_writable(staging)
    clean_stale_parts(staging)
    _undo_publish(out, staging)
    done = {j.index: r for j in jobs if (r := _done_chunk(staging, j)) is not None}
    todo = [j for j in jobs if j.index not in done and (shard is None or j.index % shard[1] == shard[0])]
    total = sum(len(j.items) for j in jobs)
    finished_inputs = sum(len(j.items) for j in jobs if j.index in done)
    for r in _run_all(todo, staging, workers, progress, total, finished_inputs):
        done[r.index] = r
    results = [done[j.index] for j in jobs if j.index in done]
    if len(results) < len(jobs):
        return _summary(out, results, total, (), finished=False, reused=len(jobs) - len(todo))
    return _publish(out, staging, key, split, results, total, source or {}, len(jobs) - len(todo))


def _existing(out: Path, key: str, force: bool) -> BuildSummary | None:
    """An up-to-date dataset in `out` (nothing to do); another dataset there is an error unless `force`."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        doc = {}
    if doc.get("key") == key and not force:
        shards = tuple(out / s["file"] for s in doc.get("shards", []))
        if all(p.is_file() for p in shards):
            return BuildSummary(out, doc.get("records", 0), doc.get("inputs", 0), shards, doc.get("subsets", {}),
                                (), up_to_date=True, reasons=doc.get("skipped", {}))
    if not force:
        raise UserError(f"{out}: already holds a dataset made from other inputs, or from files changed since "
                        f"({doc.get('records', '?')} records); pass --force to make it again, or choose another --out")
    for s in doc.get("shards", []):
        (out / s["file"]).unlink(missing_ok=True)
    for name in (SKIPS, MANIFEST):
        (out / name).unlink(missing_ok=True)
    return None


def _undo_publish(out: Path, staging: Path) -> None:
    """Remove the shards an interrupted publish already renamed (their chunks are redone), and refuse foreign files."""
    marker = staging / "publish.json"
    if marker.is_file():
        try:
            files = json.loads(marker.read_text(encoding="utf-8")).get("files", [])
        except ValueError:
            files = []
        for name in files:
            (out / Path(name).name).unlink(missing_ok=True)
        marker.unlink()
    foreign = sorted(p.name for p in out.glob("*.parquet"))
    if foreign:
        raise UserError(f"{out}: holds {foreign[0]} but no {MANIFEST}, so it is not a dataset ctxgen wrote; "
                        "choose an empty folder for --out")


def _dedupe(staging: Path, results: list[ChunkResult]) -> list[ChunkResult]:
    """Keep the first record of every id (chunk order); later duplicates are dropped and logged."""
    seen: set[str] = set()
    out = []
    for r in results:
        dups = [i for i, rid in enumerate(r.ids) if rid in seen or rid in r.ids[:i]]
        seen.update(r.ids)
        if dups:
            from ctxgen.dataset.shards import DatasetReader

            path = staging / f"chunk-{r.index:05d}.parquet"
            reader = DatasetReader(path)
            keep = [reader.record(i) for i in range(len(reader)) if i not in set(dups)]
            write_shard(path, keep, {"chunk": r.index, "key": r.key})
            notes = tuple({"level": "skip-record", "reason": "duplicate-id", "id": r.ids[i],
                           "message": f"duplicate id {r.ids[i]!r}: an earlier record has it; kept the first"}
                          for i in dups)
            r = ChunkResult(r.index, r.key, tuple(rid for i, rid in enumerate(r.ids) if i not in set(dups)),
                            dict(Counter(rec.subset for rec in keep)), r.log + notes)
        out.append(r)
    return out


def _publish(out: Path, staging: Path, key: str, split: str, results: list[ChunkResult], total: int,
             source: dict, reused: int) -> BuildSummary:
    """Rename the non-empty chunks to hub shard names, then write skipped.jsonl and dataset.json (last)."""
    results = _dedupe(staging, sorted(results, key=lambda r: r.index))
    full = [r for r in results if r.ids]
    names = {r.index: shard_name(split, k, len(full)) for k, r in enumerate(full)}
    write_json(staging / "publish.json", {"files": sorted(names.values())})
    for r in results:
        src = staging / f"chunk-{r.index:05d}.parquet"
        if r.index in names:
            src.replace(out / names[r.index])
        else:
            src.unlink(missing_ok=True)
    summary = _summary(out, results, total, tuple(out / names[r.index] for r in full), True, reused)
    write_text(out / SKIPS, "".join(json.dumps(e, sort_keys=True) + "\n" for e in summary.log))
    doc = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "key": key, "split": split,
           "records": summary.records, "inputs": total, "subsets": summary.subsets, "skipped": summary.reasons,
           "shards": [{"file": names[r.index], "records": len(r.ids)} for r in full], "source": source}
    write_json(out / MANIFEST, doc)
    shutil.rmtree(staging, ignore_errors=True)
    return summary


def _summary(out: Path, results: Iterable[ChunkResult], total: int, shards: tuple[Path, ...], finished: bool,
             reused: int) -> BuildSummary:
    results = list(results)
    subsets: Counter = Counter()
    for r in results:
        subsets.update(r.subsets)
    entries = tuple(e for r in results for e in r.log)
    reasons = dict(Counter(e["reason"] for e in entries if e.get("level", "").startswith("skip")))
    return BuildSummary(out, sum(len(r.ids) for r in results), total, shards, dict(sorted(subsets.items())),
                        entries, finished=finished, reused_chunks=reused, reasons=reasons)
