"""Running a checked batch on its backend: the manifest, the tally and fail-fast wrap the caller's events."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ctxgen.batch.manifest import Manifest
from ctxgen.batch.types import Batch, BatchEvents, BatchOptions, Record
from ctxgen.core.errors import EXIT_FAILED, EXIT_OK
from ctxgen.core.signals import sigterm_as_interrupt


@dataclass
class Summary:
    """How many images were rendered, skipped (already done) and failed."""

    ok: int = 0
    skipped: int = 0
    failed: int = 0

    def add(self, rec: Record) -> None:
        setattr(self, rec.status, getattr(self, rec.status) + 1)

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.failed else EXIT_OK

    def line(self) -> str:
        return f"{self.ok} rendered, {self.skipped} skipped, {self.failed} failed"


def run_batch(batch: Batch, opts: BatchOptions, events: BatchEvents | None = None) -> Summary:
    """Render the batch's items on the chosen backend; SIGTERM counts as an interrupt (KeyboardInterrupt)."""
    events = events or BatchEvents()
    summary = Summary()
    manifest = Manifest(opts.manifest) if opts.manifest is not None else None

    def record(rec: Record) -> None:
        if manifest is not None:
            manifest.append(rec)
        summary.add(rec)
        events.record(rec)

    def stop() -> bool:
        return (opts.fail_fast and summary.failed > 0) or events.stop()

    wrapped = replace(events, record=record, stop=stop)
    if not batch.items:
        events.notice("no scenes in this shard; nothing to do")
        return summary
    if batch.model_error is not None:
        for item in batch.items:
            rec = Record.make(item.path, None, "failed", error=batch.model_error, out_dir=str(item.out_dir))
            record(rec)
            events.scene_done(item, [rec])
        return summary
    with sigterm_as_interrupt():
        if opts.backend == "ray":
            from ctxgen.batch.ray import run_ray

            run_ray(batch, opts, wrapped)
        elif batch.devices:
            from ctxgen.batch.pool import run_pool

            run_pool(batch, opts, wrapped)
        else:
            from ctxgen.batch.serial import run_serial

            run_serial(batch, opts, wrapped)
    return summary
