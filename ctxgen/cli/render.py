"""`ctxgen render`: options, checked before any work, then the batch engine with the console reporter."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import err, handle_errors, report_error
from ctxgen.cli.options import (BATCH_PANEL, MODEL_PANEL, SAMPLING_PANEL, SCENES_PANEL, SPEED_PANEL, Device, Json,
                                OptionalScenes, Out, SamModel, TextLen)
from ctxgen.core.errors import EXIT_USAGE, ModelError, OutputError, UserError

_M, _S, _B, _P, _O = MODEL_PANEL, SAMPLING_PANEL, BATCH_PANEL, SPEED_PANEL, SCENES_PANEL


@app.command()
@handle_errors
def render(
    scenes: OptionalScenes = None,
    from_file: Annotated[Optional[str], typer.Option("--from", metavar="FILE", help="A file listing scenes, one per line ('-' = stdin).", rich_help_panel=_O)] = None,
    out: Out = Path("outputs"),
    overlays: Annotated[bool, typer.Option("--overlays/--no-overlays", help="Write debug attention-mask overlays.", rich_help_panel=_O)] = True,
    force: Annotated[bool, typer.Option("--force", help="Render again even when an output with the same key exists.", rich_help_panel=_O)] = False,
    json_out: Json = False,
    model: Annotated[Optional[str], typer.Option("--model", "-m", metavar="PRESET", help="Preset: contextgen (default) or tiny.", rich_help_panel=_M)] = None,
    base: Annotated[Optional[str], typer.Option("--base", metavar="ID|DIR", envvar="CTXGEN_BASE", help="Base model: hub id or diffusers folder.", rich_help_panel=_M)] = None,
    adapter: Annotated[Optional[str], typer.Option("--adapter", metavar="SOURCE", envvar="CTXGEN_ADAPTER", rich_help_panel=_M,
                                                   help="Adapter: hub id, folder (highest _<step> wins), .safetensors file, or none.")] = None,
    fuse: Annotated[bool, typer.Option("--fuse/--no-fuse", help="Fuse the LoRA adapter into the transformer.", rich_help_panel=_M)] = True,
    device: Device = "auto",
    dtype: Annotated[str, typer.Option("--dtype", metavar="DTYPE", help="auto (bf16 on GPU, float32 on CPU), bf16, fp16 or fp32.", rich_help_panel=_M)] = "auto",
    sam_model: SamModel = "large",
    seed: Annotated[Optional[list[int]], typer.Option("--seed", "-s", metavar="SEED", help="Seed(s); overrides the scene's. Repeatable.", rich_help_panel=_S)] = None,
    samples: Annotated[int, typer.Option("--samples", "-n", metavar="N", min=1, help="Images per scene (extra seeds count up from the last).", rich_help_panel=_S)] = 1,
    steps: Annotated[Optional[int], typer.Option("--steps", metavar="N", min=1, max=200, help="Denoising steps (default: the scene's, 28).", rich_help_panel=_S)] = None,
    guidance: Annotated[Optional[float], typer.Option("--guidance", metavar="G", min=0.0, help="Embedded guidance (default: the scene's, 3.5).", rich_help_panel=_S)] = None,
    text_len: TextLen = 512,
    manifest: Annotated[Optional[Path], typer.Option("--manifest", metavar="FILE", help="Append one JSON line per scene and seed.", rich_help_panel=_B)] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failed scene.", rich_help_panel=_B)] = False,
    shard: Annotated[Optional[str], typer.Option("--shard", metavar="I/N", help="i/N: render a deterministic 1/N of the scenes (i from 0).", rich_help_panel=_B)] = None,
    devices: Annotated[Optional[str], typer.Option("--devices", metavar="LIST", help="One worker process per device: all, cpu:N, or 0,1,... (cuda:N, cpu, mps).", rich_help_panel=_B)] = None,
    backend: Annotated[str, typer.Option("--backend", metavar="NAME", help="local (this machine) or ray (Ray Data over a cluster).", rich_help_panel=_B)] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", metavar="HOST:PORT", envvar="RAY_ADDRESS", help="Join this Ray cluster (default: start a local Ray).", rich_help_panel=_B)] = None,
    attention: Annotated[str, typer.Option("--attention", metavar="KERNEL", help="auto (flex on CUDA, else sdpa), sdpa or flex.", rich_help_panel=_P)] = "auto",
    memory: Annotated[str, typer.Option("--memory", metavar="TIER", help="full, balanced (offload text encoders and VAE) or low (NF4, CUDA).", rich_help_panel=_P)] = "full",
) -> None:
    """Render scenes with ContextGen; each worker loads the model once, finished outputs are skipped."""
    from ctxgen.batch.plan import prepare_batch
    from ctxgen.batch.run import run_batch
    from ctxgen.batch.types import BatchOptions
    from ctxgen.cli.report import batch_events
    from ctxgen.core.options import RenderOptions
    from ctxgen.scene.sources import collect_scenes

    try:
        render_opts = RenderOptions(steps=steps, guidance=guidance, text_len=text_len, dtype=dtype, memory=memory,
                                    attention=attention, fuse=fuse)
        opts = BatchOptions(
            out=out, model=model, base=base, adapter=adapter, render=render_opts, seeds=tuple(seed or ()),
            samples=samples, device=device, overlays=overlays, force=force, manifest=manifest, fail_fast=fail_fast,
            sam_model=sam_model, devices=devices, backend=backend.strip().lower(), ray_address=ray_address)
        batch = prepare_batch(collect_scenes(list(scenes or []), from_file), opts, shard)
    except UserError as exc:  # options, scene lists and model ids are checked before any work: usage errors
        code = report_error(exc)
        raise typer.Exit(code if isinstance(exc, (ModelError, OutputError)) else EXIT_USAGE) from None
    with batch_events(len(batch.items), json_out, steps=not batch.devices) as events:
        summary = run_batch(batch, opts, events)
    err.print(summary.line())
    raise typer.Exit(summary.exit_code)
