"""`ctxgen tiny-model`: save the built-in tiny FLUX-Kontext and two adapters in the real folder layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import handle_errors, result_line


@app.command("tiny-model")
@handle_errors
def tiny_model(
    folder: Annotated[Path, typer.Argument(help="Where to write base/ (diffusers layout) and adapter/.")],
    seed: Annotated[int, typer.Option(help="Weight seed.")] = 0,
) -> None:
    """Save the built-in tiny FLUX-Kontext + adapter to disk (random weights: its images are noise)."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no per-shard bars for a few kilobytes
    from ctxgen.models.tiny import save_tiny_model

    base, adapter = save_tiny_model(folder, seed=seed)
    result_line(str(base))
    result_line(str(adapter))
