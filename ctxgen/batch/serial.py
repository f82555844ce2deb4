"""The in-process backend: every scene in this process with one model load."""

from __future__ import annotations

from ctxgen.batch.job import SceneWorker, process_scene
from ctxgen.batch.types import Batch, BatchEvents, BatchOptions, ModelLoadError, WorkItem


def run_serial(batch: Batch, opts: BatchOptions, events: BatchEvents) -> None:
    """Render the items one after another; a model that cannot load stops the run (every scene would fail).

    A scene another process is rendering right now (its folder is locked) is put off to the end, then waited for:
    by then it is usually done and is skipped instead of rendered twice.
    """
    worker = SceneWorker(opts, on_step=events.step, identity=batch.identity)
    deferred: list[WorkItem] = []
    try:
        for wait, items in ((False, batch.items), (True, deferred)):
            for item in items:
                records = process_scene(worker, item, events.record, wait=wait)
                if records is None:
                    deferred.append(item)
                    continue
                events.scene_done(item, records)
                if events.stop():
                    events.notice("stopping at the first failure (--fail-fast)")
                    return
    except ModelLoadError:
        events.notice("stopping: the model could not be loaded")
    finally:
        worker.close()
