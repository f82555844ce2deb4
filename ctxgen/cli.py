"""The `ctxgen` command line. Heavy imports (torch, diffusers) happen inside the commands that need them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import EXIT_FAILED, EXIT_OK, UserError

app = typer.Typer(
    name="ctxgen",
    help="ContextGen multi-instance image generation: every subject keeps its identity and sits in its box.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

Scenes = Annotated[list[str], typer.Argument(help="Scene YAML files, folders or globs.", show_default=False)]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder; each scene writes into OUT/<scene-stem>/.")]
Json = Annotated[bool, typer.Option("--json", help="One JSON object per scene on stdout.")]
TextLen = Annotated[int, typer.Option("--text-len", min=1, max=512, help="T5 text tokens T (512 for the real model).")]
SamModel = Annotated[str, typer.Option("--sam-model", envvar="CTXGEN_SAM_MODEL",
                                       help="SAM 2.1 for `mask: auto`: large, base-plus, small, tiny, a hub id, a folder, or tiny-random (tests).")]
Device = Annotated[str, typer.Option("--device", help="auto (cuda, then mps, then cpu), cuda, cuda:1, mps or cpu.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ctxgen {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    debug: Annotated[bool, typer.Option("--debug", envvar="CTXGEN_DEBUG", help="Show tracebacks of internal errors.")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True)] = None,
) -> None:
    """ctxgen: ContextGen (ICLR 2026) on FLUX.1-Kontext."""
    import os

    from .console import setup_logging

    if debug:
        os.environ["CTXGEN_DEBUG"] = "1"
    setup_logging(verbose, quiet)


def _fail(exc: BaseException) -> typer.Exit:
    from .console import report_error

    return typer.Exit(report_error(exc))


@app.command()
def validate(scenes: Scenes, json_out: Json = False) -> None:
    """Check scene files and their images without loading any model; exit 1 on any problem."""
    from .console import emit, report_error, result_line, warn
    from .images import check_references
    from .scene import load_scene
    from .sources import collect_scenes

    try:
        paths = collect_scenes(scenes)
    except UserError as exc:
        raise _fail(exc) from None
    bad = 0
    for path in paths:
        try:
            scene = load_scene(path)
            check_references(scene)
        except UserError as exc:
            bad += 1
            report_error(exc)
            if json_out:
                emit({"scene": str(path), "ok": False, "errors": getattr(exc, "issues", [str(exc)])})
            continue
        for warning in scene.warnings:
            warn(warning)
        if json_out:
            emit({"scene": str(path), "ok": True, "warnings": list(scene.warnings)})
        else:
            result_line(f"ok {path}")
    raise typer.Exit(EXIT_FAILED if bad else EXIT_OK)


@app.command()
def schema() -> None:
    """Print the scene file's JSON Schema (for editor completion)."""
    import json

    from .scene import scene_json_schema

    typer.echo(json.dumps(scene_json_schema(), indent=2))


@app.command()
def layout(
    scenes: Scenes,
    out: Out = Path("outputs"),
    preview: Annotated[bool, typer.Option("--preview", help="Also write preview.png: boxes, layers, token grid, masks.")] = False,
    dump: Annotated[bool, typer.Option("--dump", help="Also write tokens.npz (ids, segments, packed masks) and order.json.")] = False,
    text_len: TextLen = 512,
    json_out: Json = False,
    sam_model: SamModel = "large",
    device: Device = "auto",
) -> None:
    """Build the composite layout image (and optionally a preview and the token plan) without the diffusion model."""
    from .cli_layout import run_layout

    try:
        code = run_layout(scenes, out, preview, dump, text_len, json_out, sam_model, device)
    except (UserError, KeyboardInterrupt) as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


@app.command("tiny-model")
def tiny_model(
    folder: Annotated[Path, typer.Argument(help="Where to write base/ (diffusers layout) and adapter/.")],
    seed: Annotated[int, typer.Option(help="Weight seed.")] = 0,
) -> None:
    """Save the built-in tiny FLUX-Kontext + adapter to disk (random weights: its images are noise)."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no per-shard bars for a few kilobytes
    from .console import result_line
    from .models.tiny import save_tiny_model

    try:
        base, adapter = save_tiny_model(folder, seed=seed)
    except UserError as exc:
        raise _fail(exc) from None
    result_line(str(base))
    result_line(str(adapter))


def _parse_floats(text: str | None, n: int, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        vals = ()
    if len(vals) != n:
        raise UserError(f"{flag} {text!r}: expected {n} comma-separated numbers")
    return vals


@app.command()
def mask(
    ref: Annotated[Path, typer.Argument(help="Reference image (a plain photo).")],
    point: Annotated[Optional[str], typer.Option("--point", help="X,Y in the reference's pixels.")] = None,
    box: Annotated[Optional[str], typer.Option("--box", help="X1,Y1,X2,Y2 in the reference's pixels.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Mask file (default REF_mask.png).")] = None,
    sam_model: SamModel = "large",
    device: Device = "auto",
) -> None:
    """Segment a reference's subject with SAM 2.1; writes the mask and a preview to check."""
    from .console import result_line
    from .cli_layout import run_mask

    try:
        pt = _parse_floats(point, 2, "--point")
        bx = _parse_floats(box, 4, "--box")
        written = run_mask(ref, pt, bx, out, sam_model, device)
    except (UserError, KeyboardInterrupt) as exc:
        raise _fail(exc) from None
    for path in written:
        result_line(str(path))


@app.command()
def reproduce(
    image: Annotated[Path, typer.Argument(help="A seed-<N>.png written by `ctxgen render`.")],
    out: Out = Path("outputs/reproduced"),
    json_out: Json = False,
) -> None:
    """Render an image again from its own metadata (scene, seed, settings, model) and compare the pixels."""
    from .console import emit, result_line
    from .reproduce import reproduce as run

    try:
        res = run(image, out)
    except (UserError, KeyboardInterrupt) as exc:
        raise _fail(exc) from None
    if json_out:
        emit(res)
    else:
        result_line(res["reproduced"])
        result_line("identical pixels" if res["identical"] else f"pixels differ: max |diff| {res['max_abs_diff']}")
    raise typer.Exit(EXIT_OK if res["identical"] else EXIT_FAILED)


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="First image (e.g. a `--memory full` render).")],
    b: Annotated[Path, typer.Argument(help="Second image of the same scene and seed (e.g. `--memory low`).")],
    json_out: Json = False,
) -> None:
    """How far two renders differ: PSNR, SSIM and pixel differences (judge a memory tier's quality cost)."""
    from .compare import compare_images
    from .console import emit, result_line

    try:
        res = compare_images(a, b)
    except (UserError, KeyboardInterrupt) as exc:
        raise _fail(exc) from None
    if json_out:
        emit(res)
        return
    psnr = "inf (identical)" if res["psnr_db"] is None else f"{res['psnr_db']:.2f} dB"
    result_line(f"PSNR {psnr}  SSIM {res['ssim']:.4f}  max |diff| {res['max_abs_diff']}  "
                f"mean |diff| {res['mean_abs_diff']:.3f}  differing pixels {100 * res['differing_pixels']:.2f}%")


@app.command()
def doctor(json_out: Json = False) -> None:
    """Versions, devices, memory, the model cache and which presets are present (never goes online)."""
    from .console import emit, result_line
    from .doctor import collect, format_text

    report = collect()
    if json_out:
        emit(report)
    else:
        result_line(format_text(report))


def _register_render() -> None:
    from .cli_render import render

    app.command(help=render.__doc__)(render)


_register_render()

if __name__ == "__main__":  # pragma: no cover
    app()
