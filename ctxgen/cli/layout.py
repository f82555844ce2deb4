"""`ctxgen layout`: everything up to the token sequence, no diffusion model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import emit, handle_errors, result_line, scene_failed, warn
from ctxgen.cli.options import Device, Json, Out, SamModel, Scenes, TextLen
from ctxgen.core.errors import EXIT_FAILED, EXIT_OK, UserError


@app.command()
@handle_errors
def layout(
    scenes: Scenes,
    out: Out = Path("outputs"),
    preview: Annotated[bool, typer.Option("--preview", help="Also write preview.png: boxes, layers, token grid, masks.")] = False,
    dump: Annotated[bool, typer.Option("--dump", help="Also write tokens.npz (ids, spans, packed masks) and order.json.")] = False,
    text_len: TextLen = 512,
    json_out: Json = False,
    sam_model: SamModel = "large",
    device: Device = "auto",
) -> None:
    """Build the composite layout image (and optionally a preview and the token sequence) without the diffusion model."""
    from ctxgen.outputs.files import scene_out_dirs
    from ctxgen.scene.sources import collect_scenes

    paths = collect_scenes(scenes)
    dirs = scene_out_dirs(paths, out)
    failed = 0
    for path in paths:
        try:
            written = _layout_one(path, dirs[path], preview, dump, text_len, sam_model, device)
        except UserError as exc:
            failed += 1
            scene_failed(path, exc, json_out)
            continue
        if json_out:
            emit({"scene": str(path), "ok": True, "files": {k: str(v) for k, v in written.items()}})
        else:
            for file in written.values():
                result_line(str(file))
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _layout_one(path: Path, out_dir: Path, preview: bool, dump: bool, text_len: int, sam_model: str,
                device: str) -> dict[str, Path]:
    """Compute everything in memory first, then write; a bad scene writes nothing."""
    from ctxgen.models.sam import scene_segmenter
    from ctxgen.outputs.layout_files import write_layout_outputs
    from ctxgen.scene.model import load_scene
    from ctxgen.sequence.prepare import prepare_scene

    scene = load_scene(path)
    for warning in scene.warnings:
        warn(warning)
    segmenter = scene_segmenter(scene, sam_model, device, out_dir.parent / ".cache" / "masks")
    sp = prepare_scene(scene, text_len, segmenter)
    return write_layout_outputs(sp, out_dir, preview, dump)
