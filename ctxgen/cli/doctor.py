"""`ctxgen doctor`: versions, devices, memory, the model cache and which presets are present (offline)."""

from __future__ import annotations

from ctxgen.cli.app import app
from ctxgen.cli.console import emit, result_line
from ctxgen.cli.options import JsonResult


@app.command()
def doctor(json_out: JsonResult = False) -> None:
    """Versions, devices, memory, the model cache and which presets are present (never goes online)."""
    from ctxgen.models.doctor import collect, format_text

    report = collect()
    if json_out:
        emit(report)
    else:
        result_line(format_text(report))
