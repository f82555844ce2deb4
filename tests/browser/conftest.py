"""Browser tests: Playwright drives the distribution's headless Chromium against a real `ctxgen edit` server.

Chromium comes from the system (`apt-get install chromium-headless-shell`, or `chromium`); set CTXGEN_CHROMIUM to
use another binary. Without one the tests are skipped with that reason. Screenshots of every state go to
tests/artifacts/edit/.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "edit"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "browser: drives a real headless Chromium (skipped when none is installed)")


def chromium_path() -> str | None:
    for name in (os.environ.get("CTXGEN_CHROMIUM", ""), *CHROMIUM_NAMES):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary found: apt-get install chromium-headless-shell (or set CTXGEN_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True)
        yield b
        b.close()


@dataclass
class Served:
    """A running editor: its address with the token, the app, and the scene file it edits."""

    url: str
    app: Any
    path: Path

    @property
    def session(self):
        return self.app.state.editor.session


@pytest.fixture
def served(tmp_path):
    """`ctxgen edit` on a two-instance 256x256 scene (tiny model, tiny random SAM), served by uvicorn on a free
    loopback port."""
    pytest.importorskip("uvicorn")
    import uvicorn

    from ctxgen.core.options import RenderOptions
    from ctxgen.edit.app import create_app
    from tests.browser.edit_scenes import make_scene_folder

    path = make_scene_folder(tmp_path / "work")
    app = create_app(path, model="tiny", out=path.parent / "outputs", device="cpu", sam_model="tiny-random",
                     render=RenderOptions(text_len=16))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    token = app.state.editor.config.token
    yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}/?token={token}", app, path)
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def page(browser, served):
    """A 1280x800 page on the editor, loaded; console errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    pg.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.goto(served.url)
    pg.wait_for_selector("body[data-ready='1']")
    pg.wait_for_selector("body[data-preview-version]")
    yield pg
    context.close()
    assert errors == [], errors


@pytest.fixture
def shot():
    """shot(page, name): a screenshot into tests/artifacts/edit/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(pg, name: str) -> Path:
        out = ARTIFACTS / f"{name}.png"
        pg.screenshot(path=str(out))
        return out

    return take
