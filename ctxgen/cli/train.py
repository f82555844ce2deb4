"""`ctxgen train sft|dpo CONFIG.yaml`, `ctxgen train schema`, `ctxgen train plot LOG`: train ContextGen adapters."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import emit, err, handle_errors, notice, result_line, warn
from ctxgen.cli.options import JsonResult

train_app = typer.Typer(name="train", no_args_is_help=True,
                        help="Train ContextGen adapters: SFT of a LoRA, then DPO on top (docs/train.md).")
app.add_typer(train_app, name="train")

Config = Annotated[Path, typer.Argument(help="Training config YAML (`ctxgen train schema`).", show_default=False)]
MaxSteps = Annotated[Optional[int], typer.Option("--max-steps", metavar="N", min=1, help="Stop after this optimizer step (default: the config's train.max_steps).")]
Resume = Annotated[Optional[str], typer.Option("--resume", metavar="auto|DIR", help="Continue the run: auto (its newest checkpoint, or a fresh start) or a checkpoint folder.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check the config and the data, count the trained parameters, estimate GPU memory; load no weights, write nothing.")]
Output = Annotated[Optional[Path], typer.Option("--output", "-o", metavar="DIR", help="Run folder (default: the config's `output:`).")]
Refs = Annotated[int, typer.Option("--refs", metavar="N", min=0, max=16, help="References per example for the --dry-run memory estimate.")]


class CliEvents:
    """The loop's events on stderr: a rich progress bar (loss, lr, s/step) on a terminal, saves and previews."""

    def __init__(self, bar):
        self.bar, self.task, self.main = bar, None, True

    def start(self, session) -> None:
        self.main = session.run.is_main
        if self.main:
            if session.resumed:
                notice(f"resuming {session.cfg.method} at step {session.start_step} in {session.run_dir}")
            self.task = self.bar.add_task(session.cfg.method, total=session.max_steps, completed=session.start_step,
                                          loss=float("nan"), lr=0.0, sps=0.0)

    def step(self, stats) -> None:
        if self.main and self.task is not None:
            self.bar.update(self.task, completed=stats.step, loss=stats.loss, lr=stats.lr, sps=stats.step_s)

    def saved(self, step: int, folder: Path) -> None:
        if self.main:
            notice(f"step {step}: checkpoint {folder}")

    def previews(self, step: int, paths: list[Path]) -> None:
        if self.main and paths:
            notice(f"step {step}: {len(paths)} preview(s) in {paths[0].parent.parent}")

    def cache(self, done: int, total: int) -> None:
        if self.main and (done == total or done % 100 == 0):
            notice(f"text cache: {done}/{total} prompts encoded")


@contextlib.contextmanager
def _events():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[sps]:.2f} s/step"),
               TimeRemainingColumn())
    with Progress(*columns, console=err, disable=not err.is_terminal) as bar:
        yield CliEvents(bar)


def _print_dry_run(report: dict) -> None:
    data, mem = report["data"], report["memory"]
    subsets = ", ".join(f"{k} {v}" for k, v in data["subsets"].items()) or "no mix"
    lines = [f"config ok: {report['config']} ({report['method']})",
             f"data ok: {data['records']} records ({subsets}); first {data['checked_examples']} examples built, "
             f"S = {', '.join(map(str, data['seq_lens']))} tokens",
             f"trained parameters: {report['trainable_parameters']:,} (LoRA rank {report['rank']}, alpha "
             f"{report['alpha']:g})",
             f"memory estimate, one GPU, {mem['refs']} references, S = {mem['seq_len']}:"]
    lines += [f"  {name:38s} {value / 1e9:8.2f} GB" for name, value in mem["parts"].items()]
    lines += [f"  {'peak':38s} {mem['peak_bytes'] / 1e9:8.2f} GB",
              f"  {'GPU memory needed (+5 %, +1 GB CUDA)':38s} {mem['card_bytes'] / 1e9:8.2f} GB"]
    lines += [f"  note: {n}" for n in mem["notes"]]
    for line in lines:
        result_line(line)
    for w in report["warnings"]:
        warn(w)


def _train(method: str, config: Path, max_steps, resume, dry_run: bool, output, json_out: bool, refs: int) -> None:
    from ctxgen.train.config import load_config

    cfg = load_config(config, method)
    if dry_run:
        from ctxgen.train.dry_run import dry_run as run_dry

        report = run_dry(cfg, refs)
        emit(report) if json_out else _print_dry_run(report)
        return
    from ctxgen.train.loop import open_session, train

    with _events() as events:
        session = open_session(cfg, output, resume, max_steps, events)
        try:
            summary = train(session, events)
        except KeyboardInterrupt:
            if session.run.is_main:
                notice(f"continue with: ctxgen train {method} {config} --output {session.run_dir} --resume auto")
            raise
    if not session.run.is_main:
        return
    if json_out:
        emit({"run": str(summary.run_dir), "method": method, "start_step": summary.start_step, "step": summary.step,
              "adapter": str(summary.adapter), "checkpoint": str(summary.checkpoint)})
    else:
        result_line(f"trained {method} to step {summary.step}: adapter {summary.adapter}")


@train_app.command("sft")
@handle_errors
def sft(config: Config, max_steps: MaxSteps = None, resume: Resume = None, dry_run: DryRun = False,
        output: Output = None, json_out: JsonResult = False, refs: Refs = 3) -> None:
    """Supervised fine-tuning of a LoRA on FLUX.1-Kontext with the CLA/ICA masks of inference (T1-T3)."""
    _train("sft", config, max_steps, resume, dry_run, output, json_out, refs)


@train_app.command("dpo")
@handle_errors
def dpo(config: Config, max_steps: MaxSteps = None, resume: Resume = None, dry_run: DryRun = False,
        output: Output = None, json_out: JsonResult = False, refs: Refs = 3) -> None:
    """Direct Preference Optimization on top of an SFT adapter; the layout image is the rejected sample (T4)."""
    _train("dpo", config, max_steps, resume, dry_run, output, json_out, refs)


@train_app.command("schema")
@handle_errors
def schema() -> None:
    """Print the JSON Schema of a training config."""
    from ctxgen.train.config_schema import config_json_schema

    result_line(json.dumps(config_json_schema(), indent=2))


@train_app.command("plot")
@handle_errors
def plot(log: Annotated[Path, typer.Argument(help="RUN/log.jsonl, or the run folder.", show_default=False)],
         out: Annotated[Optional[Path], typer.Option("--out", "-o", metavar="PNG", help="Image to write (default: next to the log, loss.png).")] = None) -> None:
    """Loss curves of a run (raw and smoothed) as a PNG."""
    from ctxgen.core.fsio import write_png
    from ctxgen.train.plot import LOG_NAME, plot_log

    path = log / LOG_NAME if log.is_dir() else log
    target = out or path.with_name("loss.png")
    result_line(str(write_png(target, plot_log(path))))
