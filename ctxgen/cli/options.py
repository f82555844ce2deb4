"""Command-line options shared by several commands, declared once (typer `Annotated` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

SCENES_PANEL = "Scenes and outputs"
MODEL_PANEL = "Model"
SAMPLING_PANEL = "Sampling"
BATCH_PANEL = "Batch"
SPEED_PANEL = "Speed and memory"

Scenes = Annotated[list[str], typer.Argument(help="Scene YAML files, folders or globs.", show_default=False,
                                             metavar="SCENE")]
OptionalScenes = Annotated[Optional[list[str]], typer.Argument(
    help="Scene YAML files, folders or globs.", show_default=False, metavar="SCENE")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder; each scene writes into OUT/<scene-stem>/.",
                                   rich_help_panel=SCENES_PANEL)]
Json = Annotated[bool, typer.Option("--json", help="One JSON object per scene on stdout.",
                                    rich_help_panel=SCENES_PANEL)]
JsonResult = Annotated[bool, typer.Option("--json", help="The result as one JSON object on stdout.")]
TextLen = Annotated[int, typer.Option("--text-len", metavar="T", min=1, max=512, help="T5 text tokens T (512 for the real model).",
                                      rich_help_panel=SAMPLING_PANEL)]
SamModel = Annotated[str, typer.Option(
    "--sam-model", metavar="MODEL", envvar="CTXGEN_SAM_MODEL", rich_help_panel=MODEL_PANEL,
    help="SAM 2.1 for `mask: auto`: large, base-plus, small, tiny, a hub id, a folder, or tiny-random (tests).")]
Device = Annotated[str, typer.Option("--device", metavar="DEVICE", help="auto (cuda, then mps, then cpu), cuda, cuda:1, mps or cpu.",
                                     rich_help_panel=MODEL_PANEL)]
