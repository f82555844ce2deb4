"""One render worker (loads the model once, lazily; renders scenes; writes outputs) and the in-process backend."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .batch import (BatchOptions, BatchPlan, ModelLoadError, Reporter, error_message, make_record, process_scene,
                    scene_seeds)
from .console import err
from .outputs import (RenderSettings, build_metadata, image_path, is_done, output_key, read_metadata, save_pil,
                      scene_files, write_image, write_sidecar)
from .scene import Scene

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]


def localize_identity(identity: dict[str, Any], device: str, dtype: str) -> dict[str, Any]:
    """A parent's model identity with this worker's device and dtype (the key ignores the device, not the dtype)."""
    from .models.loading import resolve_device, resolve_dtype

    dev = resolve_device(device)
    return {**identity, "device": str(dev), "dtype": str(resolve_dtype(dtype, dev)).removeprefix("torch.")}


class SceneWorker:
    """Renders scenes one after another with a single loaded model."""

    def __init__(self, opts: BatchOptions, progress: Any = None, identity: dict[str, Any] | None = None):
        self.opts = opts
        self._model = None
        self._renderer = None
        self._identity = identity
        self.progress = progress
        self.load_seconds = 0.0
        self.last_seeds: tuple[int, ...] = ()  # the seeds of the scene being rendered (for failure records)

    # -- model -----------------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """Model ids and adapter hash, resolved without loading weights (so finished work skips the load)."""
        if self._identity is None:
            from .models.loading import model_identity
            from .models.registry import resolve_model_spec

            spec = resolve_model_spec(self.opts.model, self.opts.base, self.opts.adapter)
            self._identity = model_identity(spec, self.opts.device, self.opts.dtype, self.opts.fuse)
        return self._identity

    def renderer(self):
        """The Renderer, loading the model on first use; a load failure raises ModelLoadError (fatal to this worker)."""
        if self._renderer is None:
            from .models.loading import load_model
            from .models.registry import resolve_model_spec
            from .render import Renderer

            t0 = time.perf_counter()
            try:
                spec = resolve_model_spec(self.opts.model, self.opts.base, self.opts.adapter)
                o = self.opts
                self._model = load_model(spec, o.device, o.dtype, o.fuse, memory=o.memory)
                self._renderer = Renderer(self._model, self.opts.text_len, attention=self.opts.attention)
            except Exception as exc:
                raise ModelLoadError(f"model load failed: {error_message(exc)}") from exc
            self.load_seconds = time.perf_counter() - t0
            log.info("model loaded in %.1f s on %s (%s)", self.load_seconds, self._model.device, self._model.dtype)
        return self._renderer

    def settings(self, scene: Scene) -> RenderSettings:
        from .attention import resolve_attention

        ident = self.identity()
        return RenderSettings(
            steps=self.opts.steps or scene.steps, guidance=self.opts.guidance if self.opts.guidance is not None else scene.guidance,
            text_len=self.opts.text_len, base=ident["base"], adapter=ident["adapter"],
            adapter_sha256=ident["adapter_sha256"], fused=ident["fused"], dtype=ident["dtype"], device=ident["device"],
            memory=self.opts.memory, attention=resolve_attention(self.opts.attention, ident["device"]),
        )

    def close(self) -> None:
        self._renderer = None
        self._model = None

    # -- scenes ----------------------------------------------------------------------------------------
    def seeds_for(self, scene: Scene, out_dir: Path, files: dict[str, str], settings: RenderSettings) -> tuple[int, ...]:
        """The seeds to render; a scene without a seed keeps those an earlier run drew (found by key)."""
        if not scene.seed_random or self.opts.seeds:
            return scene_seeds(scene, self.opts)
        found = []
        for png in sorted(out_dir.glob("seed-*.png")):
            meta = read_metadata(png) or {}
            seed = meta.get("seed")
            if isinstance(seed, int) and meta.get("key") == output_key(scene, files, seed, settings):
                found.append(seed)
        if not found:
            return scene_seeds(scene, self.opts)
        seeds = sorted(found)[: self.opts.samples]
        while len(seeds) < self.opts.samples:
            seeds.append(max(seeds) + 1)
        return tuple(seeds)

    def render_scene(self, scene: Scene, out_dir: Path, emit: Emit | None = None) -> list[dict[str, Any]]:
        """Render every pending seed of one scene; one record per seed, passed to `emit` as soon as it is done."""
        records: list[dict[str, Any]] = []

        def keep(rec: dict[str, Any]) -> None:
            records.append(rec)
            if emit is not None:
                emit(rec)

        self._render(scene, out_dir, keep)
        return records

    def _render(self, scene: Scene, out_dir: Path, emit: Emit) -> None:
        settings = self.settings(scene)
        files = scene_files(scene)
        seeds = self.last_seeds = self.seeds_for(scene, out_dir, files, settings)
        keys = {s: output_key(scene, files, s, settings) for s in seeds}
        common = {"out_dir": str(out_dir), "device": settings.device, "warnings": list(scene.warnings)}
        pending = []
        for s in seeds:
            png = image_path(out_dir, s)
            if not self.opts.force and is_done(png, keys[s]):
                emit(make_record(scene.source, s, "skipped", key=keys[s], outputs=[str(png)], **common))
            else:
                pending.append(s)
        if not pending:
            return
        from .plan import plan_scene

        t0 = time.perf_counter()
        sp = plan_scene(scene, self.opts.text_len, self._segmenter(scene, out_dir))  # bad images fail before the load
        plan_s = time.perf_counter() - t0
        loaded_here = self._renderer is None
        renderer = self.renderer()
        load_s = time.perf_counter() - t0 - plan_s if loaded_here else 0.0
        cond = renderer.condition(sp)
        prep = {"plan_s": round(plan_s, 4), "condition_s": round(cond.seconds, 4)}
        if cond.truncated:
            n, t = cond.prompt_tokens, self.opts.text_len
            log.warning(scene.issue("prompt", f"needs {n} T5 tokens with the template but --text-len is {t}: "
                                              f"the last {n - t} are dropped; shorten the prompt"))
        for s in pending:
            sample = renderer.sample(sp, cond, s, settings.steps, settings.guidance, self._on_step)
            t1 = time.perf_counter()
            outputs = self._write(sp, sample, settings, files, keys[s], out_dir, prep, cond.truncated)
            timings = {**prep, **{k: round(v, 4) for k, v in sample.timings.items()},
                       "sample_s": round(sample.seconds, 4), "write_s": round(time.perf_counter() - t1, 4)}
            if load_s:
                timings["load_s"], load_s = round(load_s, 4), 0.0
            emit(make_record(scene.source, s, "ok", key=keys[s], outputs=[str(p) for p in outputs], timings=timings,
                             peak_memory=sample.peak_memory, **common))

    def _segmenter(self, scene: Scene, out_dir: Path):
        from .cli_layout import scene_segmenter

        return scene_segmenter(scene, self.opts.sam_model, self.opts.device, out_dir.parent / ".cache" / "masks")

    def _on_step(self, i: int, n: int) -> None:
        if self.progress is not None:
            self.progress(i, n)

    def _write(self, sp, sample, settings, files, key, out_dir, prep, truncated) -> list[Path]:
        png = image_path(out_dir, sample.seed)
        extra = {"timings": {**prep, **sample.timings}, "peak_memory_bytes": sample.peak_memory,
                 "layer_order": list(sp.layout.order), "prompt_truncated": truncated,
                 "warnings": list(sp.scene.warnings), "wrapped_prompt": sp.prompt}
        meta = build_metadata(sp.scene, files, sample.seed, settings, key, extra)
        written: list[Path] = []
        try:
            if self.opts.overlays:
                from .overlays import render_overlays

                debug_dir = png.with_suffix(".debug")
                for name, im in render_overlays(sp, sample.image).items():
                    written.append(save_pil(debug_dir / f"{name}.png", im))
            written.insert(0, write_sidecar(png, meta))
            written.insert(0, write_image(png, sample.image, meta))  # the image last: its key marks the seed done
        except BaseException:
            for path in written:  # no sidecar or overlay without its image
                path.unlink(missing_ok=True)
            raise
        return written


def run_serial(plan: BatchPlan, opts: BatchOptions, reporter: Reporter) -> None:
    """Every scene in this process with one model load."""
    with progress_bar(len(plan.items)) as (bar, on_step):
        worker = SceneWorker(opts, progress=on_step, identity=plan.identity)
        try:
            for item in plan.items:
                reporter.scene_done(item, process_scene(worker, item, reporter.add))
                bar()
                if reporter.stop_now():
                    err.print("stopping at the first failure (--fail-fast)")
                    break
        except ModelLoadError:
            err.print("stopping: the model could not be loaded")
        finally:
            worker.close()


@contextmanager
def progress_bar(n_scenes: int, steps: bool = True):
    """A rich bar over scenes (and steps) on stderr when it is a terminal; otherwise silent callbacks."""
    if not err.is_terminal:
        yield (lambda: None), None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, console=err, transient=True) as prog:
        scenes = prog.add_task("scenes", total=n_scenes)
        step_task = prog.add_task("steps", total=1) if steps else None

        def on_step(i: int, n: int) -> None:
            prog.update(step_task, completed=i + 1, total=n)

        yield (lambda: prog.advance(scenes)), (on_step if steps else None)
