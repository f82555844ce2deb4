"""`ctxgen render`: options and the batch driver around `ctxgen.batch`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import EXIT_USAGE, ModelError, UserError


def render(
    scenes: Annotated[Optional[list[str]], typer.Argument(help="Scene YAML files, folders or globs.", show_default=False)] = None,
    from_file: Annotated[Optional[str], typer.Option("--from", help="A file listing scenes, one per line ('-' = stdin).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder; each scene writes OUT/<scene-stem>/.")] = Path("outputs"),
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Preset: contextgen (default) or tiny.")] = None,
    base: Annotated[Optional[str], typer.Option("--base", envvar="CTXGEN_BASE", help="Base model: hub id or diffusers folder.")] = None,
    adapter: Annotated[Optional[str], typer.Option("--adapter", envvar="CTXGEN_ADAPTER",
                                                   help="Adapter: hub id, folder (highest _<step> wins) or .safetensors file.")] = None,
    seed: Annotated[Optional[list[int]], typer.Option("--seed", "-s", help="Seed(s); overrides the scene's. Repeatable.")] = None,
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="Images per scene (extra seeds count up from the last).")] = 1,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, max=200, help="Denoising steps (default: the scene's, 28).")] = None,
    guidance: Annotated[Optional[float], typer.Option("--guidance", min=0.0, help="Embedded guidance (default: the scene's, 3.5).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto (cuda, mps, cpu), cuda, cuda:1, mps or cpu.")] = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help="auto (bf16 on GPU, float32 on CPU), bf16, fp16 or fp32.")] = "auto",
    text_len: Annotated[int, typer.Option("--text-len", min=1, max=512, help="T5 text tokens T.")] = 512,
    fuse: Annotated[bool, typer.Option("--fuse/--no-fuse", help="Fuse the LoRA adapter into the transformer.")] = True,
    overlays: Annotated[bool, typer.Option("--overlays/--no-overlays", help="Write debug attention-mask overlays.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Render again even when an output with the same key exists.")] = False,
    manifest: Annotated[Optional[Path], typer.Option("--manifest", help="Append one JSON line per scene and seed.")] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failed scene.")] = False,
    shard: Annotated[Optional[str], typer.Option("--shard", help="i/N: render a deterministic 1/N of the scenes.")] = None,
    devices: Annotated[Optional[str], typer.Option("--devices", help="One worker process per device: all, cpu:N, or 0,1,... (cuda:N, cpu, mps).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="local (this machine) or ray (Ray Data, `pip install ctxgen[ray]`).")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", envvar="RAY_ADDRESS", help="Join this Ray cluster (default: start a local Ray).")] = None,
    attention: Annotated[str, typer.Option("--attention", help="auto (flex on CUDA, else sdpa), sdpa or flex.")] = "auto",
    memory: Annotated[str, typer.Option("--memory", help="full, balanced (offload text encoders and VAE) or low (NF4, CUDA).")] = "full",
    sam_model: Annotated[str, typer.Option("--sam-model", envvar="CTXGEN_SAM_MODEL", help="SAM 2.1 for `mask: auto`.")] = "large",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per scene on stdout.")] = False,
) -> None:
    """Render scenes with ContextGen; each worker loads the model once, finished outputs are skipped."""
    from .batch import BatchOptions, prepare_batch, run_batch, sigterm_as_interrupt
    from .console import report_error
    from .sources import collect_scenes

    with sigterm_as_interrupt():
        try:
            _check_choice("--attention", attention, ("auto", "sdpa", "flex"))
            _check_choice("--memory", memory, ("full", "balanced", "low"))
            opts = BatchOptions(
                out=out, model=model, base=base, adapter=adapter, seeds=tuple(seed or ()), samples=samples, steps=steps,
                guidance=guidance, device=device, dtype=dtype, text_len=text_len, fuse=fuse, overlays=overlays,
                force=force, manifest=manifest, fail_fast=fail_fast, sam_model=sam_model, json_out=json_out,
                devices=devices, backend=backend.strip().lower(), ray_address=ray_address,
                attention=attention.strip().lower(), memory=memory.strip().lower(),
            )
            plan = prepare_batch(collect_scenes(list(scenes or []), from_file), opts, shard)
        except UserError as exc:  # options, scene lists and model ids are checked before any work: usage errors
            report_error(exc)
            raise typer.Exit(exc.exit_code if isinstance(exc, ModelError) else EXIT_USAGE) from None
        except KeyboardInterrupt as exc:
            raise typer.Exit(report_error(exc)) from None
        try:
            code = run_batch(plan, opts)
        except (UserError, KeyboardInterrupt) as exc:
            code = report_error(exc)
    raise typer.Exit(code)


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value.strip().lower() not in choices:
        raise UserError(f"{flag} {value!r}: choose one of {', '.join(choices)}")
