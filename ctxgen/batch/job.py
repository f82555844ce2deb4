"""One scene, start to finish: the worker that loads the model once (lazily) and renders scene after scene,
and `process_scene`, which isolates one scene's failure so the batch goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxgen.batch.types import BatchOptions, ModelLoadError, Record, WorkItem
from ctxgen.core.env import debug_enabled
from ctxgen.core.errors import OutputError, describe
from ctxgen.core.fsio import clean_stale_parts
from ctxgen.models.registry import ModelIdentity
from ctxgen.batch.lock import SceneBusy, scene_lock
from ctxgen.batch.manifest import ManifestError
from ctxgen.outputs.commit import OutputSet, commit, read_key
from ctxgen.outputs.files import image_path, overlay_names, seed_of
from ctxgen.outputs.metadata import (RenderSettings, build_metadata, encode_image, encode_overlay, encode_sidecar,
                                     is_done, output_key, read_metadata, scene_files)
from ctxgen.scene.model import Scene, load_scene

log = logging.getLogger(__name__)

Emit = Callable[[Record], None]
StepCallback = Callable[[int, int], None]


def scene_seeds(scene: Scene, opts: BatchOptions) -> tuple[int, ...]:
    """The seeds to render: --seed values or the scene's, extended by counting up to --samples images."""
    seeds = list(opts.seeds or scene.seeds)
    while len(seeds) < opts.samples:
        seeds.append(seeds[-1] + 1)
    return tuple(dict.fromkeys(seeds))


@dataclass(frozen=True)
class _Pending:
    """The seeds of one scene still to render, with their keys and the resolved settings."""

    settings: RenderSettings
    files: dict[str, str]
    keys: dict[int, str]
    seeds: tuple[int, ...]


class SceneWorker:
    """Renders scenes one after another with a single loaded model."""

    def __init__(self, opts: BatchOptions, on_step: StepCallback | None = None,
                 identity: ModelIdentity | None = None):
        self.opts = opts
        self.on_step = on_step
        self._identity = identity
        self._renderer = None
        self.load_seconds = 0.0
        self.last_seeds: tuple[int, ...] = ()  # the seeds of the scene being rendered (for failure records)

    # -- model -----------------------------------------------------------------------------------------
    def identity(self) -> ModelIdentity:
        """Model ids and adapter hash, resolved without loading weights (so finished work skips the load)."""
        if self._identity is None:
            from ctxgen.models.loading import model_identity
            from ctxgen.models.registry import resolve_model_spec

            spec = resolve_model_spec(self.opts.model, self.opts.base, self.opts.adapter)
            self._identity = model_identity(spec, self.opts.device, self.opts.render.dtype, self.opts.render.fuse)
        return self._identity

    def renderer(self):
        """The Renderer, loading the model on first use; a load failure raises ModelLoadError (fatal to this worker)."""
        if self._renderer is None:
            from ctxgen.models.loading import load_model
            from ctxgen.models.registry import resolve_model_spec
            from ctxgen.sampling.renderer import Renderer

            t0 = time.perf_counter()
            o, r = self.opts, self.opts.render
            try:
                spec = resolve_model_spec(o.model, o.base, o.adapter)
                model = load_model(spec, o.device, r.dtype, r.fuse, memory=r.memory)
                self._renderer = Renderer(model, r.text_len, attention=r.attention)
            except Exception as exc:
                raise ModelLoadError(f"model load failed: {describe(exc)}") from exc
            self.load_seconds = time.perf_counter() - t0
            log.info("model loaded in %.1f s on %s (%s)", self.load_seconds, model.device, model.dtype)
        return self._renderer

    def settings(self, scene: Scene) -> RenderSettings:
        from ctxgen.sampling.processors import resolve_attention

        ident = self.identity()
        kernel = resolve_attention(self.opts.render.attention, ident.device)
        return RenderSettings.resolve(self.opts.render, ident, scene, kernel)

    def close(self) -> None:
        self._renderer = None

    # -- scenes ----------------------------------------------------------------------------------------
    def seeds_for(self, scene: Scene, out_dir: Path, files: dict[str, str], settings: RenderSettings) -> tuple[int, ...]:
        """The seeds to render; a scene without a seed keeps those an earlier run drew (found by key), including a
        set that a killed run left without its image (its sidecar or overlays carry the key: adopted, not orphaned)."""
        if not scene.seed_random or self.opts.seeds:
            return scene_seeds(scene, self.opts)
        found = sorted(self._earlier_seeds(scene, out_dir, files, settings))
        if not found:
            return scene_seeds(scene, self.opts)
        seeds = found[: self.opts.samples]
        while len(seeds) < self.opts.samples:
            seeds.append(max(seeds) + 1)
        return tuple(seeds)

    @staticmethod
    def _earlier_seeds(scene: Scene, out_dir: Path, files: dict[str, str], settings: RenderSettings) -> set[int]:
        found: set[int] = set()
        for path in out_dir.glob("seed-*") if out_dir.is_dir() else ():
            seed = seed_of(path)
            if seed is None or seed in found:
                continue
            if path.suffix == ".png":
                key = (read_metadata(path) or {}).get("key")
            elif path.suffix == ".json":
                key = read_key(path)
            else:  # seed-N.debug: any overlay carries the key
                key = next((k for p in sorted(path.glob("*.png")) if (k := read_key(p))), None)
            if key is not None and key == output_key(scene, files, seed, settings):
                found.add(seed)
        return found

    def render_scene(self, scene: Scene, out_dir: Path, emit: Emit | None = None) -> list[Record]:
        """Render every pending seed of one scene; one record per seed, passed to `emit` as soon as it is done."""
        records: list[Record] = []

        def keep(rec: Record) -> None:
            records.append(rec)
            if emit is not None:
                emit(rec)

        pending = self._skip_done(scene, out_dir, keep)
        if pending.seeds:
            self._render(scene, out_dir, pending, keep)
        return records

    def _skip_done(self, scene: Scene, out_dir: Path, emit: Emit) -> _Pending:
        """Emit a `skipped` record for every seed whose image already carries its key; return the rest."""
        settings = self.settings(scene)
        files = scene_files(scene)
        seeds = self.last_seeds = self.seeds_for(scene, out_dir, files, settings)
        keys = {s: output_key(scene, files, s, settings) for s in seeds}
        pending = []
        names = overlay_names(len(scene.instances)) if self.opts.overlays else None
        for s in seeds:
            png = image_path(out_dir, s)
            if not self.opts.force and is_done(png, keys[s], names):
                emit(Record.make(scene.source, s, "skipped", key=keys[s], outputs=[str(png)], out_dir=str(out_dir),
                                 device=settings.device, warnings=scene.warnings))
            else:
                pending.append(s)
        return _Pending(settings, files, keys, tuple(pending))

    def _render(self, scene: Scene, out_dir: Path, pending: _Pending, emit: Emit) -> None:
        from ctxgen.models.sam import scene_segmenter
        from ctxgen.sequence.prepare import prepare_scene

        t0 = time.perf_counter()
        segmenter = scene_segmenter(scene, self.opts.sam_model, self.opts.device, out_dir.parent / ".cache" / "masks")
        sp = prepare_scene(scene, self.opts.render.text_len, segmenter)  # bad images fail before the load
        plan_s = time.perf_counter() - t0
        loaded_here = self._renderer is None
        renderer = self.renderer()
        load_s = time.perf_counter() - t0 - plan_s if loaded_here else 0.0
        cond = renderer.condition(sp)
        prep = {"plan_s": round(plan_s, 4), "condition_s": round(cond.seconds, 4)}
        if cond.truncated:
            n, t = cond.prompt_tokens, self.opts.render.text_len
            log.warning(scene.issue("prompt", f"needs {n} T5 tokens with the template but --text-len is {t}: "
                                              f"the last {n - t} are dropped; shorten the prompt"))
        st = pending.settings
        for s in pending.seeds:
            sample = renderer.sample(sp, cond, s, st.steps, st.guidance, self.on_step)
            t1 = time.perf_counter()
            outputs = self._write(sp, sample, st, pending.files, pending.keys[s], out_dir, prep, cond.truncated)
            timings = {**prep, **{k: round(v, 4) for k, v in sample.timings.items()},
                       "sample_s": round(sample.seconds, 4), "write_s": round(time.perf_counter() - t1, 4)}
            if load_s:
                timings["load_s"], load_s = round(load_s, 4), 0.0
            emit(Record.make(scene.source, s, "ok", key=pending.keys[s], outputs=[str(p) for p in outputs],
                             timings=timings, peak_memory=sample.peak_memory, out_dir=str(out_dir),
                             device=st.device, warnings=scene.warnings))

    def _write(self, sp, sample, settings: RenderSettings, files, key, out_dir, prep, truncated) -> list[Path]:
        """Encode the image, sidecar and overlays in memory, then commit them as one set (ctxgen.outputs.commit)."""
        png = image_path(out_dir, sample.seed)
        extra = {"timings": {**prep, **sample.timings}, "peak_memory_bytes": sample.peak_memory,
                 "layer_order": list(sp.composition.order), "prompt_truncated": truncated,
                 "warnings": list(sp.scene.warnings), "wrapped_prompt": sp.prompt}
        meta = build_metadata(sp.scene, files, sample.seed, settings, key, extra)
        overlays = None
        if self.opts.overlays:
            from ctxgen.outputs.overlays import render_overlays

            overlays = {name: encode_overlay(im, key) for name, im in render_overlays(sp, sample.image).items()}
        return commit(png, OutputSet(encode_image(sample.image, meta), encode_sidecar(meta), overlays))


def clean_scene_parts(out_dir: Path) -> int:
    """Remove temp files killed runs left in a scene folder and its overlay folders."""
    return clean_stale_parts(out_dir) + sum(clean_stale_parts(d) for d in out_dir.glob("*.debug"))


def process_scene(worker: Any, item: WorkItem, emit_record: Emit, wait: bool = True) -> list[Record] | None:
    """Render one scene in isolation: every seed gets exactly one record; only interrupts and load failures escape.

    The scene folder is locked for the duration (two runs into one --out never render a scene twice at once);
    with `wait=False` a scene another process is rendering returns None at once (try it again later).
    """
    try:
        with scene_lock(item.out_dir, wait=wait):
            return _process_locked(worker, item, emit_record)
    except SceneBusy:
        return None
    except ManifestError:
        raise
    except OutputError as exc:  # the scene folder cannot even be created: this scene fails, the batch goes on
        rec = Record.make(item.path, None, "failed", error=describe(exc), out_dir=str(item.out_dir))
        emit_record(rec)
        return [rec]


def _process_locked(worker: Any, item: WorkItem, emit_record: Emit) -> list[Record]:
    clean_scene_parts(item.out_dir)
    done: list[Record] = []
    clock = [time.perf_counter()]

    def sink(rec: Record) -> None:
        now = time.perf_counter()
        # the records' seconds add up to the scene's time; the scene path as the user gave it
        rec = rec.with_(seconds=round(now - clock[0], 4), scene=str(item.path))
        clock[0] = now
        done.append(rec)
        emit_record(rec)

    scene = None
    worker.last_seeds = ()
    try:
        scene = load_scene(item.path)
        worker.render_scene(scene, item.out_dir, sink)
    except (KeyboardInterrupt, ManifestError):
        raise  # an interrupt, or a record that cannot be kept, ends the run
    except Exception as exc:  # one failing scene must not stop the batch
        if debug_enabled():
            log.error("%s failed", item.path, exc_info=exc)
        seeds = worker.last_seeds or (scene_seeds(scene, worker.opts) if scene is not None else (None,))
        seen = {r.seed for r in done}
        for s in (s for s in seeds if s not in seen):
            sink(Record.make(item.path, s, "failed", error=describe(exc), out_dir=str(item.out_dir)))
        if isinstance(exc, ModelLoadError):
            raise
    return done
