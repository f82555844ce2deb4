"""The in-process backend: every scene in this process with one model load."""

from __future__ import annotations

from ctxgen.batch.job import SceneWorker, process_scene
from ctxgen.batch.types import Batch, BatchEvents, BatchOptions, ModelLoadError


def run_serial(batch: Batch, opts: BatchOptions, events: BatchEvents) -> None:
    """Render the items one after another; a model that cannot load stops the run (every scene would fail)."""
    worker = SceneWorker(opts, on_step=events.step, identity=batch.identity)
    try:
        for item in batch.items:
            events.scene_done(item, process_scene(worker, item, events.record))
            if events.stop():
                events.notice("stopping at the first failure (--fail-fast)")
                break
    except ModelLoadError:
        events.notice("stopping: the model could not be loaded")
    finally:
        worker.close()
