"""`ctxgen edit`: compose a scene by hand in the browser; the page edits the scene YAML in place."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from ctxgen.cli.app import app
from ctxgen.cli.console import handle_errors, notice, result_line, warn
from ctxgen.cli.options import Device, Out, SamModel, TextLen
from ctxgen.core.errors import EXIT_INTERRUPTED, EXIT_OK, UsageError, UserError

LOOPBACK = "127.0.0.1"
GRACE_S = 3  # on Ctrl-C, open event streams get this long before the jobs are cancelled


@app.command()
@handle_errors
def edit(
    scene: Annotated[Optional[Path], typer.Argument(
        help="Scene YAML to edit (default scene.yaml); a missing file is created on the first save.",
        show_default=False, metavar="[SCENE.yaml]")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Preset to render with: contextgen (default) or tiny.")] = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on the host (0: any free port).")] = 8765,
    host: Annotated[Optional[str], typer.Option("--host", help="Listen here instead of 127.0.0.1 (others on the network can reach it).")] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser; just print the address.")] = False,
    out: Out = Path("outputs"),
    device: Device = "auto",
    sam_model: SamModel = "large",
    text_len: TextLen = 512,
) -> None:
    """Edit a scene in the browser: drag boxes, see the layout, render; saving writes the YAML back in place."""
    import uvicorn

    from ctxgen.core.options import RenderOptions
    from ctxgen.edit.app import create_app
    from ctxgen.edit.security import LOOPBACK_HOSTS, is_loopback, new_token
    from ctxgen.models.registry import resolve_model_spec

    path = scene if scene is not None else Path("scene.yaml")
    try:
        resolve_model_spec(model)  # an unknown preset is a usage error before anything starts
    except UserError as exc:
        raise UsageError(str(exc)) from None
    bind = host or LOOPBACK
    if host is not None and not is_loopback(host):
        warn(f"--host {host}: anyone who can reach this machine and has the address with its token can edit "
             f"files in {path.resolve().parent}")
    sock = _listen(bind, port)
    token = new_token()
    try:
        web = create_app(path, model=model, out=out, device=device, sam_model=sam_model, shown=str(path),
                         render=RenderOptions(text_len=text_len), token=token,
                         hosts=LOOPBACK_HOSTS if is_loopback(bind) else None)
    except BaseException:
        sock.close()
        raise
    shown_host = f"[{bind}]" if ":" in bind else bind
    url = f"http://{shown_host}:{sock.getsockname()[1]}/?token={token}"
    server = uvicorn.Server(uvicorn.Config(web, log_level="warning", access_log=False, lifespan="on",
                                           timeout_graceful_shutdown=GRACE_S))
    notice(f"editing {path} (model {model or 'contextgen'}); Ctrl-C stops the editor")
    result_line(url)
    web.state.stopping = lambda: server.should_exit
    if not no_browser:
        threading.Thread(target=_open_when_up, args=(server, url), daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shut down cleanly (jobs cancelled), then passed the signal on
        raise typer.Exit(_stopped(web.state.editor, path, EXIT_INTERRUPTED)) from None
    raise typer.Exit(_stopped(web.state.editor, path, EXIT_OK))


def _stopped(editor, path: Path, code: int) -> int:
    """Say what stopping left behind: jobs cancelled on the way out, unsaved changes."""
    for job in editor.stopped:
        warn(f"{job.id} was {job.state} as the editor stopped; finished images are kept, partial files removed")
    if editor.session.dirty:
        warn(f"{path}: the editor had unsaved changes; they were not written")
    notice("editor stopped")
    return code


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; a port in use or a host that is not here is a usage error."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as exc:
        raise UsageError(f"--port {port} on {host}: {exc.strerror or exc}; choose another --port (0: any free port)") from None
    sock.listen(64)
    return sock


def _open_when_up(server, url: str) -> None:
    import time
    import webbrowser

    for _ in range(200):
        if server.started:
            webbrowser.open(url)
            return
        time.sleep(0.05)
