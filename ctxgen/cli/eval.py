"""`ctxgen eval ...`: score renders on LAMICBench++, COCO-MIG, LayoutSAM-Eval or identity (E1-E4), prepare
benchmark scenes, compare runs in one HTML report, and convert the aesthetic predictor's weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import err, handle_errors, notice, result_line, warn
from ctxgen.core.errors import UsageError

eval_app = typer.Typer(help="Measure what the paper measures (LAMICBench++, COCO-MIG, LayoutSAM-Eval, identity).",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")

Bench = Annotated[list[Path], typer.Argument(help="The benchmark's annotation file(s).")]
Images = Annotated[Path, typer.Option("--images", help="Folder of generated images (or `ctxgen render --out`).")]
Out = Annotated[Optional[Path], typer.Option("--out", help="Run folder: metrics.json and the cache (default: "
                                                          "eval-<bench> beside the images).")]
Models = Annotated[Optional[str], typer.Option("--models", help="EVAL.yaml (role: hub id or folder), or "
                                                               "tiny-random for every role.")]
Role = Annotated[Optional[list[str]], typer.Option("--role", help="ROLE=VALUE, e.g. detector=reference.")]
Devices = Annotated[Optional[str], typer.Option("--devices", help="all, cpu:N or a list (0,1): one worker each.")]
Backend = Annotated[str, typer.Option("--backend", help="local or ray.")]
RayAddress = Annotated[Optional[str], typer.Option("--ray-address", help="Ray head (HOST:PORT).")]
Hub = Annotated[bool, typer.Option("--hub", help="Allow downloading models from the Hugging Face hub.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
Force = Annotated[bool, typer.Option("--force", help="Score every image again (ignore the cache).")]
Json = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")]


def _run(evaluator, bench: str, images: Path, out: Optional[Path], models: Optional[str], role: Optional[list[str]],
         devices: Optional[str], backend: str, ray_address: Optional[str], hub: bool, device: str, force: bool,
         as_json: bool) -> None:
    from rich.progress import Progress

    from ctxgen.cli.console import emit
    from ctxgen.eval.run import run_eval
    from ctxgen.eval.tables import text_table
    from ctxgen.vision.roles import read_models_file, resolve_specs

    if not images.is_dir():
        raise UsageError(f"--images {images}: not a folder of generated images")
    overrides = dict(_pair(r) for r in role or [])
    everything = models if models in ("tiny-random",) else None
    file_roles = read_models_file(Path(models)) if models and everything is None else None
    specs = resolve_specs(bench, file_roles, overrides, str(models), everything)
    opts = _options(images, out, bench, devices, backend, ray_address, hub, device, force)
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"{bench}", total=None)
        result = run_eval(evaluator, specs, opts, progress=lambda d, n: bar.update(task, completed=d, total=n))
    if result.missing:
        warn(f"{len(result.missing)} image(s) missing (not scored, not counted as 0), e.g. {result.missing[0]}")
    for item in result.failed[:5]:
        warn(f"not scored: {item['error']}")
    if as_json:
        emit(result.summary)
    else:
        result_line(text_table(bench, result.summary))
    notice(f"{result.path} ({result.scored_now} scored now, {len(result.records) - len(result.failed)} in total)")
    if result.failed:
        raise typer.Exit(1)


def _pair(text: str) -> tuple[str, str]:
    role, sep, value = text.partition("=")
    if not sep or not role or not value:
        raise UsageError(f"--role {text!r}: expected ROLE=VALUE, e.g. detector=reference")
    return role.strip(), value.strip()


def _options(images: Path, out: Optional[Path], bench: str, devices: Optional[str], backend: str,
             ray_address: Optional[str], hub: bool, device: str, force: bool):
    from ctxgen.batch.devices import check_devices, parse_devices
    from ctxgen.eval.run import RunOptions

    if backend not in ("local", "ray"):
        raise UsageError(f"--backend {backend!r}: use local or ray")
    devs = parse_devices(devices, for_ray=backend == "ray") if devices else ()
    if devs and backend == "local":
        check_devices(devs)
    if device == "auto":
        from ctxgen.models.loading import resolve_device

        device = str(resolve_device("auto"))
    mode = "ray" if backend == "ray" else ("pool" if len(devs) > 1 else "serial")
    return RunOptions(out=out or images.parent / f"eval-{bench}", device=device, devices=devs, backend=mode,
                      ray_address=ray_address, hub=hub, force=force)


@eval_app.command("lamic")
@handle_errors
def lamic(bench: Bench, images: Images, out: Out = None, models: Models = None, role: Role = None,
          refs: Annotated[Optional[Path], typer.Option("--refs", help="reference_images/ (default: beside BENCH)")] = None,
          masks: Annotated[Optional[Path], typer.Option("--masks", help="reference_masks/ (default: beside BENCH)")] = None,
          samples: Annotated[int, typer.Option("--samples", min=1, help="Images per case (0000_0 ... 0000_3).")] = 4,
          variant: Annotated[str, typer.Option("--variant", help="published or corrected (aligned mask grid).")] = "published",
          devices: Devices = None, backend: Backend = "local", ray_address: RayAddress = None, hub: Hub = False,
          device: Device = "auto", force: Force = False, json: Json = False) -> None:
    """LAMICBench++ (E3): ITC, AES, IDS, IPS and AVG for fewer (2-3) and more (4+) references."""
    from ctxgen.eval.cases import load_lamic
    from ctxgen.eval.lamic import LamicEval, LamicSettings

    _variant(variant)
    root = bench[0].parent
    settings = LamicSettings(refs or root / "reference_images", masks or root / "reference_masks", samples,
                             variant=variant)
    _run(LamicEval(load_lamic(bench), images, settings), "lamic", images, out, models, role, devices, backend,
         ray_address, hub, device, force, json)


@eval_app.command("cocomig")
@handle_errors
def cocomig(bench: Bench, images: Images, out: Out = None, models: Models = None, role: Role = None,
            variant: Annotated[str, typer.Option("--variant", help="published or corrected (CLIP sees RGB).")] = "published",
            colours: Annotated[str, typer.Option("--colours", help="published or legacy HSV table.")] = "published",
            clip: Annotated[bool, typer.Option("--clip/--no-clip", help="Compute G-C and L-C.")] = True,
            devices: Devices = None, backend: Backend = "local", ray_address: RayAddress = None, hub: Hub = False,
            device: Device = "auto", force: Force = False, json: Json = False) -> None:
    """COCO-MIG (E1): SR, I-SR and mIoU per level L2-L6, G-C and L-C."""
    from ctxgen.eval.cases import load_cocomig
    from ctxgen.eval.cocomig import CocoMigEval, MigSettings

    _variant(variant)
    if colours not in ("published", "legacy"):
        raise UsageError(f"--colours {colours!r}: use published or legacy")
    _run(CocoMigEval(load_cocomig(bench), images, MigSettings(variant, colours, clip)), "cocomig", images, out,
         models, role, devices, backend, ray_address, hub, device, force, json)


@eval_app.command("layoutsam")
@handle_errors
def layoutsam(bench: Bench, images: Images, out: Out = None, models: Models = None, role: Role = None,
              clip: Annotated[bool, typer.Option("--clip/--no-clip", help="Compute CLIP and PickScore.")] = True,
              devices: Devices = None, backend: Backend = "local", ray_address: RayAddress = None, hub: Hub = False,
              device: Device = "auto", force: Force = False, json: Json = False) -> None:
    """LayoutSAM-Eval (E2): spatial, colour, texture, shape, CLIP and PickScore."""
    from ctxgen.eval.cases import load_layoutsam
    from ctxgen.eval.layoutsam import LayoutSamEval, SamSettings

    _run(LayoutSamEval(load_layoutsam(bench), images, SamSettings(clip, clip)), "layoutsam", images, out, models,
         role, devices, backend, ray_address, hub, device, force, json)


@eval_app.command("identity")
@handle_errors
def identity(scenes: Annotated[list[str], typer.Argument(help="Scene files, folders or globs.")], images: Images,
             out: Out = None, models: Models = None, role: Role = None,
             backbone: Annotated[str, typer.Option("--backbone", help="dino, clip or both.")] = "both",
             region: Annotated[str, typer.Option("--region", help="box or grounded.")] = "box",
             devices: Devices = None, backend: Backend = "local", ray_address: RayAddress = None, hub: Hub = False,
             device: Device = "auto", force: Force = False, json: Json = False) -> None:
    """DINO and CLIP-I per instance of any ctxgen render (E4)."""
    from ctxgen.eval.identity import IdentityEval, IdentitySettings
    from ctxgen.scene.sources import collect_scenes

    if backbone not in ("dino", "clip", "both") or region not in ("box", "grounded"):
        raise UsageError("--backbone takes dino, clip or both; --region takes box or grounded")
    settings = IdentitySettings(("dino", "clip") if backbone == "both" else (backbone,), region)
    _run(IdentityEval(collect_scenes(scenes), images, settings), "identity", images, out, models, role, devices,
         backend, ray_address, hub, device, force, json)


@eval_app.command("prepare")
@handle_errors
def prepare(bench_name: Annotated[str, typer.Argument(metavar="lamic|cocomig|layoutsam")], bench: Bench,
            out: Annotated[Path, typer.Option("--out", help="Folder for the scene files.")],
            refs: Annotated[Optional[Path], typer.Option("--refs", help="Reference images folder.")] = None,
            masks: Annotated[Optional[Path], typer.Option("--masks", help="Reference masks folder.")] = None,
            layouts: Annotated[Optional[Path], typer.Option("--layouts", help="LAMIC layout_images/ (optional).")] = None,
            ) -> None:
    """Write one ctxgen scene per benchmark case (references, boxes, prompt, seeds as prescribed)."""
    from ctxgen.eval.prepare import prepare_scenes

    written, skipped = prepare_scenes(bench_name, bench, out, refs=refs, masks=masks, layouts=layouts)
    for path in written:
        result_line(str(path))
    notice(f"{len(written)} scene(s) written to {out}, {skipped} already up to date; "
           f"next: ctxgen render {out} --out RENDERS, then ctxgen eval {bench_name} ... --images RENDERS")


@eval_app.command("report")
@handle_errors
def report(runs: Annotated[list[Path], typer.Argument(help="Run folders (or their metrics.json).")],
           out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("report.html"),
           worst: Annotated[int, typer.Option("--worst", min=0, help="Worst instances in the gallery.")] = 24) -> None:
    """One self-contained HTML page: tables side by side, per-level charts, a gallery of the worst instances."""
    from ctxgen.eval.report import write_report

    result_line(str(write_report(runs, out, worst=worst)))


@eval_app.command("convert-aesthetic")
@handle_errors
def convert_aesthetic(pth: Annotated[Path, typer.Argument(help="sac+logos+ava1-l14-linearMSE.pth")],
                      out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write.")] = None,
                      clip: Annotated[str, typer.Option("--clip", help="CLIP model of the features.")] = "openai/clip-vit-large-patch14",
                      ) -> None:
    """Convert the LAION aesthetic MLP (a pickle) once into safetensors (torch.load weights_only=True)."""
    from ctxgen.vision.aesthetic import convert_weights
    from ctxgen.vision.registry import AESTHETIC_HOME

    result_line(str(convert_weights(pth, out or AESTHETIC_HOME, clip)))


def _variant(variant: str) -> None:
    if variant not in ("published", "corrected"):
        raise UsageError(f"--variant {variant!r}: use published or corrected")
