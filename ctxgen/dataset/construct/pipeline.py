"""Running a stage: plan the items (upstream items kept, keys), skip the done ones, run the rest, log every item.

Items run here (serial), in one spawned worker process per `--devices` entry, or as Ray Data actors; every worker
loads the stage's models once and writes its items itself (atomically), so a killed run leaves only whole items
and a re-run does exactly the missing ones. One failing item is logged and the stage goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxgen.core.errors import UsageError
from ctxgen.dataset.construct.config import ConstructConfig
from ctxgen.dataset.construct.models import STAGE_ROLES, stage_idents
from ctxgen.dataset.construct.runner import ItemRunner, Task, stage_module
from ctxgen.dataset.construct.store import Done, StageStore, digest

log = logging.getLogger(__name__)
SECTIONS = {"t2i": ("t2i",), "detect": ("detect",), "repaint": ("repaint",), "filter": ("filter",),
            "references": ("references",), "compose": ("compose",), "match": ("match",)}
Progress = Callable[[int, int], None]


@dataclass
class StageSummary:
    stage: str
    inputs: int = 0
    counts: Counter = field(default_factory=Counter)  # ok / skipped / failed
    kept: int = 0
    reasons: Counter = field(default_factory=Counter)  # rejection reasons of this stage's items
    errors: list[str] = field(default_factory=list)
    dataset: Any = None  # the BuildSummary when this stage wrote the shards

    def add(self, entry: dict) -> None:
        self.counts[entry["status"]] += 1
        if entry["status"] == "failed":
            self.errors.append(f"{self.stage}/{entry['item']}: {entry.get('error')}")
        elif entry.get("kept"):
            self.kept += 1
        else:
            self.reasons[entry.get("reason") or "rejected"] += 1


def item_key(cfg: ConstructConfig, stage: str, up: Done) -> str:
    """The stage, its settings, its models' ids, the run's seed and dtype, and the upstream item's key and files."""
    settings = {s: cfg.section(s) for s in SECTIONS.get(stage, ())}
    if stage == "filter":
        settings["max_instances"] = cfg.max_instances()
    if stage in ("references", "compose"):
        settings["min_instances"] = cfg.match.min_instances
    return digest([stage, settings, stage_idents(cfg.models, stage), cfg.seed, cfg.dtype, up.fingerprint()])


def plan(cfg: ConstructConfig, run: Path, stage: str) -> list[Task]:
    """One task per kept item of the upstream stage, with its key."""
    up_store = StageStore(run, stage_module(stage).UPSTREAM)
    tasks = []
    for item_id in up_store.ids():
        up = up_store.done(item_id)
        if up is not None and up.kept:
            tasks.append(Task(item_id, item_key(cfg, stage, up)))
    return tasks


def run_stage(cfg: ConstructConfig, run: Path, stage: str, devices: tuple[str, ...] = (), device: str = "auto",
              backend: str = "local", ray_address: str | None = None, force: bool = False,
              progress: Progress | None = None, shard_workers: int = 1) -> StageSummary:
    """Run one stage of the config's path (the last one also writes the dataset shards)."""
    if stage not in cfg.stages:
        raise UsageError(f"stage {stage!r} is not on the {cfg.path} path; its stages: {', '.join(cfg.stages)}")
    store = StageStore(run, stage)
    store.prepare()
    summary = StageSummary(stage)
    if stage == "prompts":
        _prompts(cfg, store, summary, force)
        return summary
    tasks = plan(cfg, run, stage)
    summary.inputs = len(tasks)
    todo = []
    for task in tasks:
        done = store.done(task.id)
        if done is not None and done.key == task.key and not force:
            entry = {"stage": stage, "item": task.id, "key": task.key, "status": "skipped", "kept": done.kept,
                     "reason": done.reason}
            store.log(entry)
            summary.add(entry)
        else:
            todo.append(task)
    finished = [len(tasks) - len(todo)]

    def record(entry: dict) -> None:
        store.log(entry)
        summary.add(entry)
        finished[0] += 1
        if progress:
            progress(finished[0], len(tasks))

    if todo:
        _execute(cfg, run, stage, todo, devices, device, backend, ray_address, record)
    from ctxgen.dataset.construct.records import FINAL, write_dataset

    if stage == FINAL[cfg.path]:
        summary.dataset = write_dataset(run, cfg, workers=shard_workers)
    return summary


def _execute(cfg, run, stage, todo, devices, device, backend, ray_address, record) -> None:
    if backend == "ray":
        from ctxgen.dataset.construct.workers import run_ray

        run_ray(cfg, run, stage, todo, devices, ray_address, record)
    elif len(devices) > 1 and STAGE_ROLES[stage]:
        from ctxgen.dataset.construct.workers import run_pool

        run_pool(cfg, run, stage, todo, devices, record)
    else:
        runner = ItemRunner(cfg, run, stage, devices[0] if devices else _device(device))
        for task in todo:
            record(runner(task))


def _device(device: str) -> str:
    from ctxgen.models.loading import resolve_device

    return str(resolve_device(device))


def _prompts(cfg: ConstructConfig, store: StageStore, summary: StageSummary, force: bool) -> None:
    """The prompts stage runs in the driver: entries from the file or the endpoint become items."""
    from ctxgen.dataset.construct import prompts

    def log_call(entry: dict) -> None:
        store.log({"stage": "prompts", **entry})
        if entry["status"] == "failed":
            summary.errors.append(f"prompts/{entry['item']}: {entry['error']}")
            summary.counts["failed"] += 1

    pairs = prompts.items(cfg, store, log_call)
    summary.inputs = len(pairs)
    for item, key in pairs:
        done = store.done(item.id)
        status = "skipped" if done is not None and done.key == key and not force else "ok"
        if status == "ok":
            store.write(item, key)
        entry = {"stage": "prompts", "item": item.id, "key": key, "status": status, "kept": item.kept,
                 "reason": item.reason}
        store.log(entry)
        summary.add(entry)


def run_path(cfg: ConstructConfig, run: Path, on_stage: Callable[[StageSummary], None] | None = None,
             **kwargs: Any) -> list[StageSummary]:
    """`construct all`: every stage of the path in order."""
    out = []
    for stage in cfg.stages:
        summary = run_stage(cfg, run, stage, **kwargs)
        out.append(summary)
        if on_stage:
            on_stage(summary)
    return out
