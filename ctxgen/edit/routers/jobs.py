"""/api/render, /api/masks, /api/jobs: long work as jobs, followed with server-sent events; render history."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse

from ctxgen.edit.jobs import FINAL, Job
from ctxgen.edit.schemas import JobOut
from ctxgen.edit.security import require_token

router = APIRouter(tags=["jobs"])
guarded = [Depends(require_token)]


def _job(request: Request, job_id: str) -> Job:
    job = request.app.state.editor.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.post("/render", dependencies=guarded)
def render(request: Request) -> JobOut:
    """Render the current text with the server's model (loaded once, on the first render)."""
    return JobOut(**request.app.state.editor.start_render().summary())


@router.post("/masks", dependencies=guarded)
def masks(request: Request) -> JobOut:
    """Compute the SAM masks of every `mask: auto` instance (cached; previews and renders read them)."""
    return JobOut(**request.app.state.editor.start_masks().summary())


@router.get("/jobs")
def list_jobs(request: Request) -> list[JobOut]:
    return [JobOut(**j.summary()) for j in request.app.state.editor.jobs.list()]


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request) -> JobOut:
    return JobOut(**_job(request, job_id).summary())


@router.post("/jobs/{job_id}/cancel", dependencies=guarded)
def cancel(job_id: str, request: Request) -> JobOut:
    job = _job(request, job_id)
    request.app.state.editor.jobs.cancel(job)
    return JobOut(**job.summary())


@router.get("/jobs/{job_id}/events")
async def events(job_id: str, request: Request, after: int = 0) -> StreamingResponse:
    """The job's events from `after` (or Last-Event-ID) on, as server-sent events, until it ends."""
    job = _job(request, job_id)
    last = request.headers.get("last-event-id", "")
    start = int(last) if last.isdigit() else after

    async def stream():
        seq = start
        while True:
            batch = job.events_after(seq)
            for event in batch:
                seq = event["seq"]
                yield f"id: {seq}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"
            if any(e["type"] in FINAL for e in batch) or (job.finished and not batch and seq >= len(job.events)):
                return
            if request.app.state.stopping():  # the server is stopping: let it, the job is cancelled after
                return
            await asyncio.get_running_loop().run_in_executor(None, job.wait, seq, 0.5)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


@router.get("/renders")
def history(request: Request) -> list[dict]:
    return request.app.state.editor.renderer.history.entries()


@router.get("/renders/{entry}/{name:path}")
def history_file(entry: str, name: str, request: Request) -> FileResponse:
    return FileResponse(request.app.state.editor.renderer.history.file(entry, name), media_type="image/png")
