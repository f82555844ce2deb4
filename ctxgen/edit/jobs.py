"""Long work off the request threads: renders and SAM masks run one at a time on a worker thread, each a `Job`
whose events (progress, records, the outcome) the page follows as server-sent events.

A job never ends silently: it finishes, fails with its one-line message, or is cancelled (by the page or at
shutdown) and says so. Closing the page cancels nothing; reopening it finds the job and its events.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from ctxgen.core.errors import UserError, describe

log = logging.getLogger(__name__)

State = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL: tuple[str, ...] = ("done", "failed", "cancelled")
MAX_JOBS = 50  # finished jobs kept for the page to look up


class JobCancelled(Exception):
    """Raised inside a job (between denoising steps, between masks) once cancellation was asked for."""


@dataclass
class Job:
    """One render or SAM run: its state, its numbered events and its result."""

    id: str
    kind: str
    state: State = "queued"
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    events: list[dict[str, Any]] = field(default_factory=list)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in FINAL

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def emit(self, kind: str, **data: Any) -> None:
        """Append one event (numbered from 1); `progress` events also update `progress`."""
        with self._changed:
            if kind == "progress":
                self.progress = {**self.progress, **data}
            self.events.append({"seq": len(self.events) + 1, "type": kind, "job": self.id, **data})
            self._changed.notify_all()

    def check_cancel(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled()

    def events_after(self, seq: int) -> list[dict[str, Any]]:
        with self._changed:
            return self.events[seq:]

    def wait(self, seq: int, timeout: float) -> None:
        """Block until an event past `seq` exists or `timeout` passes."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.events) > seq, timeout)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "state": self.state, "progress": self.progress,
                "result": self.result, "error": self.error, "created": self.created, "events": len(self.events)}


class JobQueue:
    """A single worker thread (one model per server) running jobs in order; finished jobs are kept a while."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctxgen-edit-job")
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def submit(self, kind: str, work: Callable[[Job], dict[str, Any]]) -> Job:
        with self._lock:
            job = Job(id=f"{kind}-{next(self._ids)}", kind=kind)
            self._jobs[job.id] = job
            self._forget_old()
        job.emit("state", state="queued")
        self._pool.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def busy(self, kind: str) -> Job | None:
        """The unfinished job of this kind, if any."""
        return next((j for j in self.list() if j.kind == kind and not j.finished), None)

    def cancel(self, job: Job) -> None:
        """Ask a job to stop at its next check; a queued job is cancelled before it starts."""
        if not job.finished:
            job._cancel.set()
            job.emit("cancelling")

    def shutdown(self, timeout: float = 30.0) -> list[Job]:
        """Cancel every unfinished job and wait (bounded) for the worker thread; returns the jobs it cancelled."""
        stopped = [job for job in self.list() if not job.finished]
        for job in stopped:
            self.cancel(job)
        deadline = time.monotonic() + timeout
        while any(not j.finished for j in stopped) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._pool.shutdown(wait=False, cancel_futures=True)
        return stopped

    def _forget_old(self) -> None:
        done = [j for j in self._jobs.values() if j.finished]
        for job in done[: max(0, len(self._jobs) - MAX_JOBS)]:
            del self._jobs[job.id]

    def _run(self, job: Job, work: Callable[[Job], dict[str, Any]]) -> None:
        if job.cancel_requested:
            self._finish(job, "cancelled", error="cancelled before it started")
            return
        job.state = "running"
        job.emit("state", state="running")
        try:
            result = work(job)
        except JobCancelled:
            self._finish(job, "cancelled", error="cancelled; finished images are kept, partial files removed")
        except UserError as exc:
            self._finish(job, "failed", error=describe(exc))
        except Exception as exc:  # a failing job must never take the worker thread down
            log.error("%s failed", job.id, exc_info=exc)
            self._finish(job, "failed", error=f"internal error {type(exc).__name__}: {exc}")
        else:
            self._finish(job, "done", result=result)

    def _finish(self, job: Job, state: State, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        job.result, job.error = result, error
        job.state = state
        job.emit(state, result=result, error=error)
