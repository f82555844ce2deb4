"""The CLI's consoles and the one place that turns errors into messages and exit codes."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, SceneError, UserError

err = Console(stderr=True, highlight=False, soft_wrap=True)


def debug_enabled() -> bool:
    return os.environ.get("CTXGEN_DEBUG", "") not in ("", "0")


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, handlers=[RichHandler(console=err, show_path=False, show_time=False)],
                        format="%(message)s", force=True)
    lib_level = "warning" if verbose > 1 else "error"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", lib_level)  # both libraries read these when first imported
    os.environ.setdefault("DIFFUSERS_VERBOSITY", lib_level)
    for noisy in ("diffusers", "transformers", "httpx", "huggingface_hub", "peft"):
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))


def emit(obj: Any) -> None:
    """Write one machine-readable JSON line to stdout."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def result_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def warn(line: str) -> None:
    err.print(f"[yellow]warning[/] {escape(line)}")


def report_error(exc: BaseException) -> int:
    """Print a one-line message (one per scene issue) to stderr and return the exit code."""
    if isinstance(exc, KeyboardInterrupt):
        err.print("[yellow]interrupted[/]; finished outputs are kept, partial files removed; re-run to resume")
        return EXIT_INTERRUPTED
    if isinstance(exc, SceneError):
        for line in exc.issues:
            err.print(f"[red]error[/] {escape(line)}")
        return exc.exit_code
    if isinstance(exc, UserError):
        err.print(f"[red]error[/] {escape(str(exc))}")
        return exc.exit_code
    if _is_oom(exc):
        err.print("[red]error[/] out of GPU memory; try --memory balanced or --memory low, a smaller size, or fewer references")
        return EXIT_FAILED
    if debug_enabled():
        raise exc
    err.print(f"[red]internal error[/] {type(exc).__name__}: {escape(str(exc))} (set CTXGEN_DEBUG=1 for the traceback)")
    return EXIT_FAILED


def _is_oom(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()
