"""The `ctxgen` program: `python -m ctxgen` and the `ctxgen` console script.

SIGTERM and Ctrl-C are turned into a clean interrupt (exit 130, no traceback) before anything else is imported,
so even a signal during start-up ends the way the README promises.
"""

from __future__ import annotations

import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        from ctxgen.cli import app

        app(prog_name="ctxgen")
    except KeyboardInterrupt:  # during start-up, before a command's own handling
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
