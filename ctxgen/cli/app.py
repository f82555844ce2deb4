"""The `ctxgen` Typer application and its global options. Commands live one per module in `ctxgen.cli`.

Heavy imports (torch, diffusers) happen inside the commands that need them, so `ctxgen --help`, `validate` and
`layout` start fast. `CtxgenGroup` makes every usage error one line on stderr (exit 2) instead of a box.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any, Optional, get_args

import typer
from typer._click import exceptions as click_errors
from typer.core import TyperArgument, TyperGroup, TyperOption

from ctxgen import __version__
from ctxgen.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from ctxgen.core.signals import install_interrupt_handlers


def usage_line(exc: click_errors.UsageError) -> str:
    """A click usage error as one line: `error --steps: …; see 'ctxgen render --help'`."""
    text = " ".join(exc.format_message().split()).rstrip(".")
    param = getattr(exc, "param", None)
    if param is not None and text.startswith("Invalid value for "):
        text = f"{getattr(exc, 'param_hint', None) or param.opts[0]}: " + text.split(": ", 1)[-1]
    cmd = exc.ctx.command_path if exc.ctx is not None else "ctxgen"
    return f"error {text}; see '{cmd} --help'"


_TYPE_LABELS = {"str": "TEXT", "int": "INT", "float": "NUMBER", "Path": "PATH", "bool": None}


def _type_label(param: TyperOption | TyperArgument, ctx: Any) -> str | None:
    """The help's type column: what to type (`PATH`, `INT`), nothing for flags (typer shows `<bool>`)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False) or isinstance(param, TyperArgument):
        return None
    if param.metavar:
        return param.metavar
    annotation = param.type_descriptor.annotation
    while get_args(annotation):  # list[int] -> int (a repeatable option takes one value each time)
        annotation = get_args(annotation)[0]
    return _TYPE_LABELS.get(getattr(annotation, "__name__", ""), "VALUE") or None


TyperOption.display_type_rich = _type_label  # a presentation choice for ctxgen's own help screens
TyperArgument.display_type_rich = _type_label


class CtxgenGroup(TyperGroup):
    """typer's group with one-line usage errors and exit codes 2 (usage) and 130 (interrupted)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name or "ctxgen", complete_var=complete_var,
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else EXIT_OK
        except click_errors.NoArgsIsHelpError as exc:
            typer.echo(exc.format_message())
            code = EXIT_OK
        except click_errors.UsageError as exc:
            typer.echo(usage_line(exc), err=True)
            code = EXIT_USAGE
        except click_errors.ClickException as exc:
            typer.echo(f"error {' '.join(exc.format_message().split())}", err=True)
            code = exc.exit_code
        except (typer.Abort, KeyboardInterrupt):
            typer.echo("interrupted", err=True)
            code = EXIT_INTERRUPTED
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="ctxgen",
    cls=CtxgenGroup,
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


__all__ = ["EXIT_FAILED", "app"]
