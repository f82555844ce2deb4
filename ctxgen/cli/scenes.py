"""`ctxgen validate` and `ctxgen schema`: scene checks and the scene JSON Schema, no model, no torch."""

from __future__ import annotations

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import emit, handle_errors, result_line, scene_failed, warn
from ctxgen.cli.options import Json, Scenes
from ctxgen.core.errors import EXIT_FAILED, EXIT_OK, UserError


@app.command()
@handle_errors
def validate(scenes: Scenes, json_out: Json = False) -> None:
    """Check scene files and their images without loading any model; exit 1 on any problem."""
    from ctxgen.scene.check import check_scene_file
    from ctxgen.scene.sources import collect_scenes

    paths = collect_scenes(scenes)
    bad = 0
    for path in paths:
        try:
            scene = check_scene_file(path)
        except UserError as exc:
            bad += 1
            scene_failed(path, exc, json_out)
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

    from ctxgen.scene.model import scene_json_schema

    typer.echo(json.dumps(scene_json_schema(), indent=2))
