"""The `ctxgen` Typer application and its global options. Commands live one per module in `ctxgen.cli`.

Heavy imports (torch, diffusers) happen inside the commands that need them, so `ctxgen --help`, `validate` and
`layout` start fast.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ctxgen import __version__
from ctxgen.core.signals import install_interrupt_handlers

app = typer.Typer(
    name="ctxgen",
    help="ContextGen multi-instance image generation: every subject keeps its identity and sits in its box.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ctxgen {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    debug: Annotated[bool, typer.Option("--debug", envvar="CTXGEN_DEBUG", help="Show tracebacks of internal errors.")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """ctxgen: ContextGen (ICLR 2026) on FLUX.1-Kontext."""
    import os

    from ctxgen.cli.console import setup_logging

    install_interrupt_handlers()
    if debug:
        os.environ["CTXGEN_DEBUG"] = "1"
    setup_logging(verbose, quiet)
