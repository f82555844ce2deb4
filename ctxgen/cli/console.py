"""The CLI's consoles, logging set-up, and the one place that turns errors into messages and exit codes.

Results go to stdout (`result_line`, `emit`), everything else to stderr (`err`). Library code only logs.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
import typer.exceptions
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from ctxgen.core.env import debug_enabled
from ctxgen.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, OOM_HINT, SceneError, UserError, is_out_of_memory

err = Console(stderr=True, highlight=False, soft_wrap=True)
QUIET_LIBRARIES = ("diffusers", "transformers", "httpx", "huggingface_hub", "peft", "accelerate", "ray", "urllib3",
                   "torch", "filelock")
F = TypeVar("F", bound=Callable[..., Any])


class OneLine(logging.Formatter):
    """`LEVEL message` on one line (newlines folded): the log format when stderr is not a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(super().format(record).split("\n"))


def setup_logging(verbose: int, quiet: bool) -> None:
    """rich's log handler on a terminal; elsewhere plain one-line records, never wrapped at 80 columns."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    if err.is_terminal:
        handler: logging.Handler = RichHandler(console=err, show_path=False, show_time=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLine("%(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    lib_level = "warning" if verbose > 1 else "error"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", lib_level)  # both libraries read these when first imported
    os.environ.setdefault("DIFFUSERS_VERBOSITY", lib_level)
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))


def emit(obj: Any) -> None:
    """Write one machine-readable JSON line to stdout."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def result_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def notice(text: str) -> None:
    """A one-line message on stderr (not a result, not an error)."""
    err.print(escape(text))


def warn(line: str) -> None:
    err.print(f"[yellow]warning[/] {escape(line)}")


def error_line(line: str) -> None:
    err.print(f"[red]error[/] {escape(line)}")


def report_error(exc: BaseException) -> int:
    """Print a one-line message (one per scene issue) to stderr and return the exit code."""
    if isinstance(exc, KeyboardInterrupt):
        err.print("[yellow]interrupted[/]; finished outputs are kept, partial files removed; re-run to resume")
        return EXIT_INTERRUPTED
    if isinstance(exc, SceneError):
        for line in exc.issues:
            error_line(line)
        return exc.exit_code
    if isinstance(exc, UserError):
        error_line(str(exc))
        return exc.exit_code
    if is_out_of_memory(exc):
        error_line(OOM_HINT)
        return EXIT_FAILED
    if debug_enabled():
        raise exc
    err.print(f"[red]internal error[/] {type(exc).__name__}: {escape(str(exc))} (set CTXGEN_DEBUG=1 for the traceback)")
    return EXIT_FAILED


def scene_failed(path: object, exc: BaseException, json_out: bool) -> None:
    """A per-scene failure in a scene loop (validate, layout): its lines on stderr, and its JSON object if asked."""
    report_error(exc)
    if json_out:
        emit({"scene": str(path), "ok": False, "errors": getattr(exc, "issues", [str(exc)])})


def handle_errors(command: F) -> F:
    """Run a command; any error or interrupt becomes its message on stderr and the exit code of the README table."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
            raise  # typer's own exits and usage errors
        except (Exception, KeyboardInterrupt) as exc:
            raise typer.Exit(report_error(exc)) from None

    return run  # type: ignore[return-value]
