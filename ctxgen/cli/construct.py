"""`ctxgen dataset construct STAGE --config CONSTRUCT.yaml`: build an IMIG-style dataset stage by stage (D3, D4).

One sub-command per stage (prompts, t2i, detect, crop, repaint, segment, filter; references, compose, match),
`all` for the config's whole path, and `report`. Results on stdout, progress and messages on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ctxgen.cli.console import emit, error_line, handle_errors, notice, result_line
from ctxgen.cli.dataset import _progress, dataset_app
from ctxgen.cli.options import JsonResult
from ctxgen.core.errors import EXIT_FAILED, EXIT_OK, UsageError

construct_app = typer.Typer(name="construct", no_args_is_help=True,
                            help="Build your own IMIG-style dataset: prompts -> images -> instances -> shards.")
dataset_app.add_typer(construct_app, name="construct")

Config = Annotated[Path, typer.Option("--config", "-c", help="CONSTRUCT.yaml (see docs/construct.md).",
                                      show_default=False)]
Run = Annotated[Optional[Path], typer.Option("--run", help="Run folder (default: runs/<config name>).")]
Devices = Annotated[Optional[str], typer.Option("--devices", help="all, cpu:N or a list (0,1): one worker each.")]
Device = Annotated[str, typer.Option("--device", help="Device of a single worker: auto, cpu, cuda[:N], mps.")]
Backend = Annotated[str, typer.Option("--backend", help="local or ray.")]
RayAddress = Annotated[Optional[str], typer.Option("--ray-address", help="Ray head (HOST:PORT).")]
Force = Annotated[bool, typer.Option("--force", help="Redo items even when their key matches.")]


def _setup(config: Path, run: Optional[Path], devices: Optional[str], backend: str):
    from ctxgen.batch.devices import check_devices, parse_devices
    from ctxgen.dataset.construct.config import load_config

    if backend not in ("local", "ray"):
        raise UsageError(f"--backend {backend!r}: use local or ray")
    cfg = load_config(config)
    devs = parse_devices(devices, for_ray=backend == "ray") if devices else ()
    if devs and backend == "local":
        check_devices(devs)
    return cfg, run or Path("runs") / config.name.split(".")[0], devs


def _show(summary, as_json: bool) -> None:
    c = summary.counts
    if as_json:
        emit({"stage": summary.stage, "inputs": summary.inputs, "ok": c["ok"], "skipped": c["skipped"],
              "failed": c["failed"], "kept": summary.kept, "rejected": dict(summary.reasons),
              "errors": summary.errors, **({"dataset": str(summary.dataset.out), "records": summary.dataset.records}
                                             if summary.dataset is not None else {})})
    else:
        why = ", ".join(f"{k} {v}" for k, v in sorted(summary.reasons.items()))
        result_line(f"{summary.stage}: {summary.inputs} in, {c['ok']} done, {c['skipped']} skipped, "
                    f"{c['failed']} failed; kept {summary.kept}" + (f"; rejected: {why}" if why else ""))
        if summary.dataset is not None:
            ds = summary.dataset
            result_line(f"dataset {ds.out}: {ds.records} records in {len(ds.shards)} shard(s)"
                        + (" (up to date)" if ds.up_to_date else ""))
    for line in summary.errors[:20]:
        error_line(line)
    if len(summary.errors) > 20:
        notice(f"... and {len(summary.errors) - 20} more failures (see the stage's manifest.jsonl)")


def _run(stages: list[str], config: Path, run: Optional[Path], devices: Optional[str], device: str, backend: str,
         ray_address: Optional[str], force: bool, as_json: bool) -> None:
    from ctxgen.dataset.construct.pipeline import run_stage

    cfg, run_dir, devs = _setup(config, run, devices, backend)
    if stages == ["all"]:
        stages = list(cfg.stages)
    failed = False
    for stage in stages:
        with _progress(stage, None) as update:
            summary = run_stage(cfg, run_dir, stage, devices=devs, device=device, backend=backend,
                                ray_address=ray_address, force=force, progress=lambda d, t: update(d))
        _show(summary, as_json)
        failed |= bool(summary.counts["failed"])
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _stage_command(stage: str, doc: str) -> None:
    @construct_app.command(stage, help=doc)
    @handle_errors
    def command(config: Config, run: Run = None, devices: Devices = None, device: Device = "auto",
                backend: Backend = "local", ray_address: RayAddress = None, force: Force = False,
                json: JsonResult = False) -> None:
        _run([stage], config, run, devices, device, backend, ray_address, force, json)


for _name, _doc in (
        ("all", "Every stage of the config's path, in order; the last writes the dataset shards."),
        ("prompts", "Prompts + nouns from the prompt file or the LLM endpoint; the D3 rules checked."),
        ("t2i", "One scene image per prompt (FLUX.1-dev + turbo LoRA, 1024², 8 steps)."),
        ("detect", "Grounding DINO boxes: thresholds, tiny-box rule, NMS 0.625, at most 8."),
        ("crop", "Each box cut from its scene."),
        ("repaint", "Each crop repainted by FLUX.1-Kontext (keep only X + a weighted edit); valid_box."),
        ("segment", "SAM 2.1 masks of the crops and the repaints (box prompts)."),
        ("filter", "The D3 rules (2-5 instances, area >= 1 %, fit >= 0.6); writes the dataset shards."),
        ("references", "Flexible path: a reference image per subject, cut out and masked."),
        ("compose", "Flexible path: the scene composed from its references (FLUX.1-Kontext substitute)."),
        ("match", "Flexible path: DINOv2 / face identity matching (0.82 / 0.65); writes the dataset shards.")):
    _stage_command(_name, _doc)


@construct_app.command("report")
@handle_errors
def report(config: Config, run: Run = None, out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Folder for report.md, report.json, contact-sheet.png (default RUN/report).")] = None,
        samples: Annotated[int, typer.Option("--samples", min=1, max=64, help="Kept and rejected scenes shown.")] = 6,
        json_out: JsonResult = False) -> None:
    """Per stage: items in / kept, rejection reasons, failures; a contact sheet of kept and rejected scenes."""
    from ctxgen.dataset.construct.report import build_report

    cfg, run_dir, _ = _setup(config, run, None, "local")
    if not run_dir.is_dir():
        raise UsageError(f"--run {run_dir}: no such run folder; run a stage first")
    target = out or run_dir / "report"
    doc = build_report(run_dir, cfg, target, samples, cfg.seed)
    if json_out:
        emit(doc)
    else:
        for s in doc["stages"]:
            why = ", ".join(f"{k} {v}" for k, v in sorted(s["rejected"].items()))
            result_line(f"{s['stage']}: {'-' if s['inputs'] is None else s['inputs']} in, {s['kept']} kept"
                        + (f"; rejected: {why}" if why else "") + (f"; {len(s['failed'])} failed" if s["failed"]
                                                                    else ""))
        result_line(f"report: {target / 'report.md'}")
