"""Rendering from the editor: one `SceneWorker` per server (the model loads once, on the first render), outputs
written the usual way into `<out>/<scene>/` so `ctxgen reproduce` works on them, and a history of this scene's
renders kept beside them in `<out>/<scene>/history/<key>/`.

Unsaved text is rendered from a hidden snapshot file in the scene's folder (relative paths resolve as for the
scene itself; the snapshot is removed afterwards and the image's metadata carries its text).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from ctxgen.batch.job import SceneWorker, clean_scene_parts, scene_seeds
from ctxgen.batch.lock import SceneBusy, scene_lock
from ctxgen.batch.types import BatchOptions, Record
from ctxgen.core.errors import UserError
from ctxgen.core.fsio import write_text
from ctxgen.edit.jobs import Job
from ctxgen.outputs.files import scene_out_dirs
from ctxgen.outputs.metadata import read_metadata
from ctxgen.scene.model import load_scene

ENTRY = re.compile(r"^[0-9a-f]{16}$")
FILE = re.compile(r"^seed-\d+(\.png|\.debug/[A-Za-z0-9_-]+\.png)$")
MAX_HISTORY = 60


class History:
    """Copies of finished renders, one folder per output key (an identical render is listed once)."""

    def __init__(self, root: Path):
        self.root = root

    def keep(self, record: Record) -> dict[str, Any] | None:
        """Copy the record's image, sidecar and overlays into the history; returns the entry."""
        if record.status not in ("ok", "skipped") or not record.outputs or not record.key:
            return None
        png = Path(record.outputs[0])
        entry = self.root / record.key[:16]
        if not entry.is_dir():
            tmp = self.root / f".{record.key[:16]}.{os.getpid()}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for src in (png, png.with_suffix(".json")):
                if src.is_file():
                    shutil.copy2(src, tmp / src.name)
            if png.with_suffix(".debug").is_dir():
                shutil.copytree(png.with_suffix(".debug"), tmp / png.with_suffix(".debug").name)
            os.replace(tmp, entry)
        os.utime(entry)  # the newest render first
        return self.describe(entry)

    def entries(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and ENTRY.match(p.name)]
        found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in found[MAX_HISTORY:]:
            shutil.rmtree(old, ignore_errors=True)
        return [d for d in (self.describe(p) for p in found[:MAX_HISTORY]) if d is not None]

    def describe(self, entry: Path) -> dict[str, Any] | None:
        png = next(iter(sorted(entry.glob("seed-*.png"))), None)
        meta = read_metadata(png) if png is not None else None
        if not meta:
            return None
        debug = png.with_suffix(".debug")
        overlays = sorted(p.stem for p in debug.glob("*.png")) if debug.is_dir() else []
        settings = meta.get("settings", {})
        return {"id": entry.name, "seed": meta.get("seed"), "image": png.name, "overlays": overlays,
                "time": entry.stat().st_mtime, "steps": settings.get("steps"), "base": settings.get("base"),
                "adapter": settings.get("adapter"), "size": meta.get("size"), "key": meta.get("key")}

    def file(self, entry: str, name: str) -> Path:
        """A file of one entry, by a name that can only point inside it."""
        if not ENTRY.match(entry) or not FILE.match(name):
            raise UserError(f"no render file {entry}/{name}")
        path = self.root / entry / name
        if not path.is_file():
            raise UserError(f"no render file {entry}/{name}")
        return path


class Renderer:
    """Renders the editor's scene text with one worker; progress and records go to the job's events."""

    def __init__(self, opts: BatchOptions, scene_path: Path):
        self.opts = opts
        self.scene_path = scene_path
        self.out_dir = scene_out_dirs([scene_path], opts.out)[scene_path]
        self.history = History(self.out_dir / "history")
        self._job: Job | None = None
        self.worker = SceneWorker(opts, on_step=self._on_step)

    def model_name(self) -> str:
        return self.opts.model or self.opts.base or "contextgen"

    def run(self, job: Job, text: str, disk_text: str | None, random_seed: int) -> dict[str, Any]:
        """Render every seed of the scene text; the job's events carry steps and records (a job's work)."""
        self._job = job
        snapshot = None
        try:
            if text != disk_text:
                digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
                snapshot = write_text(self.scene_path.with_name(f".{self.scene_path.stem}.edit-{digest}.yaml"), text)
            scene = load_scene(snapshot or self.scene_path)
            if scene.seed_random:
                scene = dataclasses.replace(scene, seeds=(random_seed,))
            seeds = scene_seeds(scene, self.opts)
            job.emit("progress", stage="loading model", seeds=len(seeds), done=0)
            job.check_cancel()
            self.worker.renderer()
            job.check_cancel()
            t0, entries = time.perf_counter(), []

            def on_record(rec: Record) -> None:
                entry = self.history.keep(rec)
                entries.append(entry)
                job.emit("record", status=rec.status, seed=rec.seed, entry=entry, error=rec.error)
                job.emit("progress", done=len(entries))

            job.emit("progress", stage="rendering")
            try:
                with scene_lock(self.out_dir, wait=False):
                    clean_scene_parts(self.out_dir)
                    self.worker.render_scene(scene, self.out_dir, on_record)
            except SceneBusy:
                raise UserError(f"another ctxgen process is rendering this scene into {self.out_dir}; "
                                "wait for it and render again") from None
            return {"entries": entries, "seconds": round(time.perf_counter() - t0, 2), "out_dir": str(self.out_dir)}
        finally:
            self._job = None
            if snapshot is not None:
                snapshot.unlink(missing_ok=True)

    def _on_step(self, i: int, n: int) -> None:
        job = self._job
        if job is not None:
            job.emit("progress", step=i + 1, steps=n)
            job.check_cancel()
