"""`ctxgen reproduce`: render an image again from its own metadata and compare the pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import emit, handle_errors, result_line
from ctxgen.cli.options import JsonResult, Out
from ctxgen.core.errors import EXIT_FAILED, EXIT_OK


@app.command()
@handle_errors
def reproduce(
    image: Annotated[Path, typer.Argument(help="A seed-<N>.png written by `ctxgen render`.")],
    out: Out = Path("outputs/reproduced"),
    json_out: JsonResult = False,
) -> None:
    """Render an image again from its own metadata (scene, seed, settings, model) and compare the pixels."""
    from ctxgen.batch.reproduce import reproduce as run

    res = run(image, out)
    if json_out:
        emit(res)
    else:
        result_line(res["reproduced"])
        result_line("identical pixels" if res["identical"] else f"pixels differ: max |diff| {res['max_abs_diff']}")
    raise typer.Exit(EXIT_OK if res["identical"] else EXIT_FAILED)
