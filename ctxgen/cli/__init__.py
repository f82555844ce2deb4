"""The `ctxgen` command line: one module per command, registered on the Typer app of `ctxgen.cli.app`.

Shared options are declared once in `options`, errors become exit codes in one place (`console.handle_errors`),
and the batch reporter (`report`) is the only code that shows what the engine does.
"""

from ctxgen.cli import compare, construct, dataset, doctor, edit, eval, layout, mask, render, reproduce, scenes, tiny_model, train  # noqa: F401  (registers)
from ctxgen.cli.app import app

__all__ = ["app"]
