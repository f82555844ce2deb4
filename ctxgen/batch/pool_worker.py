"""The child side of the process pool: a spawned worker that renders the scenes its parent sends, and dies with
its parent (a parent killed with SIGKILL leaves no worker writing on)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from ctxgen.batch.job import SceneWorker, process_scene
from ctxgen.batch.types import BatchOptions, ModelLoadError
from ctxgen.core.errors import EXIT_INTERRUPTED, describe
from ctxgen.core.signals import raise_interrupt
from ctxgen.models.registry import ModelIdentity

QUIET_LIBRARIES = ("diffusers", "transformers", "httpx", "huggingface_hub", "peft")
_PR_SET_PDEATHSIG = 1
WATCHDOG_S = 1.0  # how often a worker checks that its parent is still there


def die_with_parent(parent_pid: int) -> None:
    """Get SIGTERM when the parent dies: prctl(PR_SET_PDEATHSIG) on Linux, plus a thread watching getppid()."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):  # no prctl here: the watchdog below still works
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_S)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="ctxgen-parent-watchdog", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def worker_main(conn: Any, opts: BatchOptions, identity: ModelIdentity, device: str, threads: int, level: int,
                parent_pid: int) -> None:
    """A worker process: ask for a scene, render it, send its records, repeat until sent None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us with SIGTERM
    signal.signal(signal.SIGTERM, raise_interrupt)  # -> KeyboardInterrupt: temp files removed while unwinding
    logging.basicConfig(level=level, format=f"%(levelname)s [worker {device} %(process)d] %(message)s", force=True)
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))
    code = 0
    try:
        die_with_parent(parent_pid)
        _serve(conn, opts, identity, device, threads)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except (EOFError, BrokenPipeError):
        pass  # the parent is gone: stop after the scene in hand
    except Exception as exc:  # a worker that cannot start (device, dtype) reports once and stops
        conn.send(("fatal", describe(exc)))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # nothing is left to clean up; skips seconds of interpreter teardown (torch, transformers)


def _serve(conn: Any, opts: BatchOptions, identity: ModelIdentity, device: str, threads: int) -> None:
    import torch

    from ctxgen.models.loading import localize_identity

    torch.set_num_threads(threads)
    local = localize_identity(identity, device, opts.render.dtype)
    worker = SceneWorker(replace(opts, device=device), identity=local)
    conn.send(("ready", None))
    while (item := conn.recv()) is not None:
        try:
            process_scene(worker, item, lambda rec: conn.send(("record", rec)))
        except ModelLoadError as exc:
            conn.send(("fatal", str(exc)))
            return
        conn.send(("done", None))
