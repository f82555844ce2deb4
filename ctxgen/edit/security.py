"""The editor's guards: a per-session token on every request that changes anything, a Host check against DNS
rebinding while bound to loopback, and headers that keep the page to itself (no framing, no referrer, only
its own scripts)."""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse

TOKEN_HEADER = "X-Ctxgen-Token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def new_token() -> str:
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    return host.strip("[]") in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def require_token(request: Request) -> None:
    """FastAPI dependency for mutating routes: the session token must come in the X-Ctxgen-Token header."""
    given = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(given.encode(), request.app.state.editor.config.token.encode()):
        raise HTTPException(403, "missing or wrong session token: open the address `ctxgen edit` printed")


def _host_name(header: str) -> str:
    """`127.0.0.1:8765` -> `127.0.0.1`, `[::1]:80` -> `[::1]`."""
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: refuse requests whose Host is not loopback (when `hosts` is set) and add the security
    headers to every answer (streams pass through untouched)."""

    def __init__(self, app, hosts: tuple[str, ...] | None):
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = Headers(scope=scope).get("host", "")
        if self.hosts is not None and _host_name(host) not in self.hosts:
            answer = JSONResponse({"detail": "this editor only answers on its loopback address"}, 403, HEADERS)
            return await answer(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in HEADERS.items():
                    if key not in headers:
                        headers[key] = value
            await send(message)

        await self.app(scope, receive, with_headers)
