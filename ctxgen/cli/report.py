"""How `ctxgen render` shows a batch: output paths or JSON on stdout, warnings, errors, timings and progress bars
on stderr. The engine hands over Records (`BatchEvents`); this module alone decides how they look.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.markup import escape

from ctxgen.batch.types import BatchEvents, Record, WorkItem
from ctxgen.cli.console import emit, err, error_line, notice, result_line

log = logging.getLogger(__name__)
STAGES = ("load_s", "plan_s", "condition_s", "denoise_s", "decode_s", "write_s")


class Reporter:
    """Console side of a render batch: one line per output, each scene's warnings and errors once."""

    def __init__(self, json_out: bool):
        self.json_out = json_out
        self._warned: set[str] = set()
        self._errors: set[str] = set()

    def record(self, rec: Record) -> None:
        if rec.scene not in self._warned:
            self._warned.add(rec.scene)
            for line in rec.warnings:  # scene warnings already start with `file:line:col`
                err.print(f"[yellow]warning[/] {escape(line)}")
        if rec.status == "failed" and str(rec.error) not in self._errors:  # each distinct message once
            self._errors.add(str(rec.error))
            for line in str(rec.error).splitlines():
                error_line(line)
        if rec.status == "ok":
            self._timings(rec)
        if not self.json_out:
            for file in rec.outputs:
                result_line(file)

    @staticmethod
    def _timings(rec: Record) -> None:
        """Per-stage seconds of one image: on an interactive stderr always, else in the log (-v)."""
        parts = [f"{k[:-2]} {rec.timings[k]:.2f}s" for k in STAGES if rec.timings.get(k)]
        line = f"{Path(rec.scene).name} seed {rec.seed}: " + ", ".join(parts)
        if err.is_terminal:
            err.print(f"[dim]{escape(line)}[/]")
        else:
            log.info(line)

    def scene_done(self, item: WorkItem, records: list[Record]) -> None:
        if self.json_out:
            ok = bool(records) and all(r.status != "failed" for r in records)
            emit({"scene": str(item.path), "ok": ok, "results": [r.as_dict() for r in records]})


@contextmanager
def batch_events(n_scenes: int, json_out: bool, steps: bool = True) -> Iterator[BatchEvents]:
    """The events of one render run, with rich progress bars over scenes (and steps) when stderr is a terminal."""
    reporter = Reporter(json_out)
    with _progress(n_scenes, steps) as (advance, on_step):
        def scene_done(item: WorkItem, records: list[Record]) -> None:
            reporter.scene_done(item, records)
            advance()

        yield BatchEvents(record=reporter.record, scene_done=scene_done, step=on_step, notice=notice)


@contextmanager
def _progress(n_scenes: int, steps: bool) -> Iterator[tuple[Any, Any]]:
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
