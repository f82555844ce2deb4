"""`ctxgen dataset ...`: training data as Parquet shards: pack, import-imig, validate, preview, stats, and more."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import emit, err, error_line, handle_errors, notice, result_line, warn
from ctxgen.cli.options import JsonResult
from ctxgen.core.errors import EXIT_FAILED, EXIT_OK, UsageError, install_hint

dataset_app = typer.Typer(name="dataset", no_args_is_help=True,
                          help="Training data: scenes or IMIG-100K into Parquet shards; check, preview and count them.")
app.add_typer(dataset_app, name="dataset")


@dataset_app.callback()
@handle_errors
def _needs_pyarrow() -> None:
    """Every dataset command reads or writes Parquet."""
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise UsageError(f"ctxgen dataset needs pyarrow; {install_hint('dataset')}")

Dataset = Annotated[Path, typer.Argument(help="A dataset folder (its *.parquet shards).", show_default=False)]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to write (shards, dataset.json).")]
PerShard = Annotated[int, typer.Option("--per-shard", metavar="N", min=1, help="Inputs per shard.")]
Split = Annotated[str, typer.Option("--split", metavar="NAME", help="Split name in the shard names.")]
Workers = Annotated[int, typer.Option("--workers", "-j", metavar="N", min=1, help="Worker processes (same output as 1).")]
Shard = Annotated[Optional[str], typer.Option("--shard", metavar="I/N", help="i/N: only this machine's chunks; run again without it to publish.")]
Decode = Annotated[bool, typer.Option("--decode", help="Decode every image while checking (default: headers and masks only).")]
Force = Annotated[bool, typer.Option("--force", help="Replace a dataset made from other inputs in --out.")]
Canvas = Annotated[str, typer.Option("--canvas", metavar="WxH", help="Training canvas: auto (the target's aspect, 16-px multiples) or e.g. 768x768.")]


def parse_canvas(text: str) -> tuple[int, int] | None:
    """`auto` -> None, `768x768` / `768,512` -> (768, 768): multiples of 16 within 256..2048."""
    if text.strip().lower() == "auto":
        return None
    try:
        w, h = (int(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise UsageError(f"--canvas {text!r}: expected auto or WxH, e.g. 768x768") from None
    if not all(256 <= v <= 2048 and v % 16 == 0 for v in (w, h)):
        raise UsageError(f"--canvas {text!r}: each side must be a multiple of 16 within 256..2048")
    return w, h


@contextlib.contextmanager
def _progress(label: str, total: int | None):
    """A transient rich progress bar on stderr (interactive terminals only); yields update(done)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                  transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, *_: bar.update(task, completed=done)


def _build_report(summary, json_out: bool, what: str) -> None:
    """The outcome of pack / import-imig / make-synthetic: one result line (or JSON), skips on stderr."""
    if json_out:
        emit({"out": str(summary.out), "records": summary.records, "inputs": summary.inputs,
              "shards": [str(p) for p in summary.shards], "subsets": summary.subsets, "skipped": summary.reasons,
              "up_to_date": summary.up_to_date, "finished": summary.finished})
    elif summary.up_to_date:
        result_line(f"up to date: {summary.records} records in {len(summary.shards)} shards in {summary.out}")
    elif not summary.finished:
        result_line(f"{summary.records} records in finished chunks; run the same command without --shard to "
                    "finish and publish the shards")
    else:
        result_line(f"{what} {summary.records} records from {summary.inputs} inputs into {len(summary.shards)} "
                    f"shards in {summary.out}")
    levels = Counter(e.get("level") for e in summary.log)
    if summary.reasons:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.reasons.items()))
        counts = ", ".join(f"{levels[f'skip-{what}']} {what}s" for what in ("record", "instance", "subset")
                           if levels[f"skip-{what}"])
        warn(f"skipped {counts} ({reasons}); details: {summary.out / 'skipped.jsonl'}")


def _run_build(out: Path, producer, items: list, options: dict, per_shard: int, split: str, workers: int,
               shard: Optional[str], force: bool, source: dict):
    from ctxgen.batch.plan import parse_shard
    from ctxgen.dataset.build import build, plan_jobs

    spec = parse_shard(shard) if shard else None
    jobs = plan_jobs(producer, items, options, per_shard)
    with _progress(next(iter(source)), len(items)) as update:
        return build(out, jobs, split, workers, spec, force, update, source)


@dataset_app.command("schema")
def schema() -> None:
    """Print the record schema (Parquet columns, instance fields, datasets features) as JSON."""
    from ctxgen.dataset.arrow import schema_document

    typer.echo(json.dumps(schema_document(), indent=2))


@dataset_app.command("pack")
@handle_errors
def pack(
    scenes: Annotated[Optional[list[str]], typer.Argument(help="Scene YAML files (with `target:`), folders or globs.", show_default=False, metavar="SCENE")] = None,
    from_file: Annotated[Optional[str], typer.Option("--from", metavar="FILE", help="A file listing scenes, one per line ('-' = stdin).")] = None,
    out: OutDir = Path("dataset"), per_shard: PerShard = 1000, split: Split = "train", workers: Workers = 1,
    shard: Shard = None, decode: Decode = False, force: Force = False, json_out: JsonResult = False,
) -> None:
    """Scene files that name a `target:` (and optionally `rejected:`) become Parquet shards, checked as `render` checks."""
    from ctxgen.dataset.scenes import pack_items, plan_pack
    from ctxgen.scene.sources import collect_scenes

    items = plan_pack(collect_scenes(list(scenes or []), from_file))
    summary = _run_build(out, pack_items, items, {"decode": decode}, per_shard, split, workers, shard, force,
                         {"pack": {"scenes": len(items)}})
    for entry in summary.log:
        for line in entry.get("issues", [entry["message"]]):
            error_line(line)
    _build_report(summary, json_out, "packed")
    raise typer.Exit(EXIT_FAILED if summary.reasons else EXIT_OK)


@dataset_app.command("import-imig")
@handle_errors
def import_imig(
    root: Annotated[Path, typer.Argument(help="The IMIG-100K folder (imig-basic/, imig-complex/, imig-composite/, imig-multicomposite/).", show_default=False)],
    out: OutDir = Path("dataset"),
    subset: Annotated[Optional[list[str]], typer.Option("--subset", metavar="NAME", help="Only these subsets (basic, complex, composite, multicomposite). Repeatable.")] = None,
    per_shard: PerShard = 1000, split: Split = "train", workers: Workers = 1, shard: Shard = None,
    decode: Decode = False, force: Force = False, json_out: JsonResult = False,
) -> None:
    """Import the published IMIG-100K layout; what cannot be used is skipped and logged (OUT/skipped.jsonl)."""
    from ctxgen.dataset.imig import SUBSET_DIRS, import_items, plan_imig

    unknown = sorted(set(subset or ()) - set(SUBSET_DIRS.values()) - set(SUBSET_DIRS))
    if unknown:
        raise UsageError(f"--subset {unknown[0]!r}: choose from {', '.join(SUBSET_DIRS.values())}")
    items, subset_log = plan_imig(root, subset)
    for entry in subset_log:
        warn(entry["message"])
    summary = _run_build(out, import_items, items, {"decode": decode}, per_shard, split, workers, shard, force,
                         {"imig": {"root": str(root.resolve()), "entries": len(items)}})
    _build_report(summary, json_out, "imported")
    raise typer.Exit(EXIT_FAILED if summary.finished and summary.records == 0 else EXIT_OK)


@dataset_app.command("validate")
@handle_errors
def validate(dataset: Dataset, canvas: Canvas = "auto", json_out: JsonResult = False) -> None:
    """Check every record (decodes, sizes, boxes, masks, the 16-px canvas, instance count, ids); every problem at once."""
    from ctxgen.dataset.checks import validate_dataset
    from ctxgen.dataset.shards import list_shards

    size = parse_canvas(canvas)
    list_shards(dataset)
    with _progress("validate", None) as update:
        count, problems = validate_dataset(dataset, size, update)
    for p in problems:
        where = p["shard"] + (f":{p['row']}" if p["row"] is not None else "")
        error_line(f"{where} {p['id'] or ''} {p['field']}: {p['message']}".replace("  ", " "))
    if json_out:
        emit({"dataset": str(dataset), "records": count, "problems": problems})
    else:
        result_line(f"{'ok' if not problems else 'bad'} {dataset}: {count} records, {len(problems)} problems")
    raise typer.Exit(EXIT_FAILED if problems else EXIT_OK)


@dataset_app.command("preview")
@handle_errors
def preview(
    dataset: Dataset,
    index: Annotated[Optional[int], typer.Option("--index", "-i", metavar="N", min=0, help="Record number (0-based, shard name order).")] = None,
    record_id: Annotated[Optional[str], typer.Option("--id", metavar="ID", help="Record id.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="PNG file (default: outputs/preview-<id>.png).")] = None,
    canvas: Canvas = "auto",
    text_len: Annotated[int, typer.Option("--text-len", metavar="T", min=1, max=512, help="T5 text tokens T for the mask maps.")] = 512,
) -> None:
    """One picture of a record: target with boxes, references with masks, the layout, token and mask overlays."""
    from ctxgen.core.fsio import write_png
    from ctxgen.dataset.preview import render_record_preview
    from ctxgen.dataset.shards import DatasetReader

    if (index is None) == (record_id is None):
        raise UsageError("give exactly one of --index N and --id ID")
    size = parse_canvas(canvas)
    reader = DatasetReader(dataset)
    i = reader.index_of(record_id) if record_id is not None else index
    if i >= len(reader):
        raise UsageError(f"--index {i}: the dataset holds {len(reader)} records (0..{len(reader) - 1})")
    rec = reader.record(i)
    picture = render_record_preview(rec, str(reader.location(i)), size, text_len)
    from ctxgen.dataset.export import record_stem

    path = out or Path("outputs") / f"preview-{record_stem(rec).replace('/', '_')}.png"
    result_line(str(write_png(path, picture)))


@dataset_app.command("stats")
@handle_errors
def stats(
    dataset: Dataset,
    plot_path: Annotated[Optional[Path], typer.Option("--plot", metavar="PNG", help="Where to write the plot (default: outputs/<dataset>-stats.png).")] = None,
    json_out: JsonResult = False,
) -> None:
    """Counts per subset, instances per record, box size and aspect distributions: a table and a PNG plot."""
    from ctxgen.core.fsio import write_png
    from ctxgen.dataset.shards import DatasetReader
    from ctxgen.dataset.stats import Stats, plot

    reader = DatasetReader(dataset)
    numbers = Stats()
    with _progress("stats", len(reader)) as update:
        for k, (_, rec) in enumerate(reader.scan()):
            if isinstance(rec, Exception):
                numbers.bad_rows += 1
            else:
                numbers.add(rec)
            update(k + 1)
    path = write_png(plot_path or Path("outputs") / f"{dataset.resolve().name}-stats.png", plot(numbers))
    if json_out:
        emit({**numbers.to_dict(), "plot": str(path)})
    else:
        result_line(numbers.table())
        result_line(f"plot {path}")


@dataset_app.command("make-synthetic")
@handle_errors
def make_synthetic(
    out: Annotated[Path, typer.Argument(help="Folder to write.", show_default=False)],
    n: Annotated[int, typer.Option("--n", metavar="N", min=1, help="Number of records.")] = 100,
    seed: Annotated[int, typer.Option("--seed", metavar="SEED", min=0, help="Same seed, same bytes.")] = 0,
    size: Annotated[int, typer.Option("--size", metavar="PX", min=64, max=2048, help="Target width in pixels.")] = 256,
    layout: Annotated[str, typer.Option("--layout", metavar="KIND", help="shards (a dataset), imig (the IMIG-100K folders) or scenes (pack inputs).")] = "shards",
    per_shard: PerShard = 500, workers: Workers = 1, force: Force = False, json_out: JsonResult = False,
) -> None:
    """A deterministic synthetic dataset (textured shapes with exact boxes and masks) for tests and demos."""
    from ctxgen.dataset import synthetic

    if layout not in ("shards", "imig", "scenes"):
        raise UsageError(f"--layout {layout!r}: choose shards, imig or scenes")
    if layout == "imig":
        result_line(str(synthetic.write_imig_tree(out, n, seed, size)))
        return
    if layout == "scenes":
        from ctxgen.dataset.export import export_record

        for i in range(n):
            export_record(synthetic.synthetic_record(i, seed, size), out)
        result_line(f"wrote {n} scenes to {out}")
        return
    with _progress("synthetic", n) as update:
        summary = synthetic.make_synthetic(out, n, seed, size, per_shard=per_shard, workers=workers, force=force,
                                           progress=update)
    _build_report(summary, json_out, "wrote")


@dataset_app.command("export-scenes")
@handle_errors
def export_scenes(dataset: Dataset, out: Annotated[Path, typer.Option("--out", "-o", help="Folder for <id>.yaml and <id>/ image files.")] = Path("scenes")) -> None:
    """Records back to scene YAML + image files; `pack` on them gives the same records."""
    from ctxgen.dataset.export import export_record
    from ctxgen.dataset.shards import DatasetReader

    reader = DatasetReader(dataset)
    with _progress("export", len(reader)) as update:
        for i in range(len(reader)):
            export_record(reader.record(i), out)
            update(i + 1)
    result_line(f"wrote {len(reader)} scenes to {out}")
    if not len(reader):
        notice("the dataset holds no records")
