"""`create_app`: the editor's FastAPI application for one scene file, built fresh per call (tests get their own).

Routers per resource (scene, preview, files, jobs); the page is static files shipped in `ctxgen/edit/static/`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ctxgen.core.errors import SceneError, UserError
from ctxgen.edit.editor import EditConfig, Editor, NotReady
from ctxgen.edit.files import PathRefused, UploadRefused
from ctxgen.edit.routers import files, jobs, preview, scene
from ctxgen.edit.session import Conflict

STATIC = Path(__file__).parent / "static"


def create_app(scene_path: str | Path, model: str | None = None, **options: Any) -> FastAPI:
    """The editor app for `scene_path`; `options` are the other EditConfig fields (out, device, token, ...)."""
    config = EditConfig(scene=Path(scene_path), shown=options.pop("shown", None) or str(scene_path), model=model,
                        **options)
    editor = Editor(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        editor.close()

    app = FastAPI(title="ctxgen edit", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.editor = editor
    app.state.stopping = lambda: False  # the server sets this; event streams end when it turns True
    for router in (scene.router, preview.router, files.router, jobs.router):
        app.include_router(router, prefix="/api")
    _errors(app)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    from ctxgen.edit.security import Guard

    app.add_middleware(Guard, hosts=config.hosts)
    return app


def _errors(app: FastAPI) -> None:
    """User errors become one-line JSON answers: 409 for conflicts, 403 for refused paths, 400 otherwise."""

    def answer(status: int):
        async def handle(request: Request, exc: Exception) -> JSONResponse:
            body: dict[str, Any] = {"detail": str(exc)}
            if isinstance(exc, SceneError):
                body["issues"] = exc.issues
            if isinstance(exc, Conflict):
                body["scene"] = request.app.state.editor.scene_out().model_dump()
            return JSONResponse(body, status_code=status)

        return handle

    app.add_exception_handler(Conflict, answer(409))
    app.add_exception_handler(PathRefused, answer(403))
    app.add_exception_handler(UploadRefused, answer(400))
    app.add_exception_handler(NotReady, answer(409))
    app.add_exception_handler(UserError, answer(400))
