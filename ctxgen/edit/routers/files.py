"""/api/files: images in the scene's folder (list, thumbnails) and uploads into it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from ctxgen.edit.files import UploadRefused
from ctxgen.edit.schemas import UploadOut
from ctxgen.edit.security import require_token

router = APIRouter(tags=["files"])


@router.get("/files")
def list_files(request: Request) -> list[dict]:
    return request.app.state.editor.folder.list_images()


@router.get("/files/{rel:path}")
def thumbnail(rel: str, request: Request) -> Response:
    return Response(request.app.state.editor.folder.thumbnail(rel), media_type="image/png")


@router.post("/files", dependencies=[Depends(require_token)])
async def upload(name: str, request: Request) -> UploadOut:
    """The raw image bytes as the body, `?name=` its file name; capped before and while reading."""
    folder = request.app.state.editor.folder
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > folder.max_upload:
        raise UploadRefused(f"{name}: {int(declared):,} bytes is over the upload limit of {folder.max_upload:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > folder.max_upload:
            raise UploadRefused(f"{name}: over the upload limit of {folder.max_upload:,} bytes")
        chunks.append(chunk)
    return UploadOut(**await run_in_threadpool(folder.save_upload, name, b"".join(chunks)))
