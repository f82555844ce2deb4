"""`ctxgen edit` as a user starts it: a real server on a loopback port, its address with the token on stdout,
usage errors before anything starts, and a clean stop on Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tests.browser.edit_scenes import make_scene_folder  # noqa: E402

CLI = [sys.executable, "-m", "ctxgen", "edit"]


def request(url: str, headers: dict | None = None, data: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_editor_serves_on_loopback_with_a_token_and_stops_on_ctrl_c(tmp_path):
    path = make_scene_folder(tmp_path)
    proc = subprocess.Popen([*CLI, str(path), "--model", "tiny", "--port", "0", "--no-browser",
                             "--out", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url, url
        base, token = url.split("/?token=")
        status, scene = request(f"{base}/api/scene")
        assert status == 200 and scene["valid"] and scene["file"] == str(path)
        body = json.dumps({"version": 0, "ops": [{"op": "set", "path": ["steps"], "value": 3}]}).encode()
        assert request(f"{base}/api/scene/edit", {"Content-Type": "application/json"}, body)[0] == 403
        status, edited = request(f"{base}/api/scene/edit", {"Content-Type": "application/json",
                                                             "X-Ctxgen-Token": token}, body)
        assert status == 200 and "steps: 3\n" in edited["text"]
        assert request(f"{base}/api/scene", {"Host": "attacker.example"})[0] == 403
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "unsaved changes" in err and "editor stopped" in err
    assert path.read_text().count("steps: 2") == 1, "nothing is saved without Save"


def test_usage_errors_come_before_the_server_starts(tmp_path):
    from typer.testing import CliRunner

    from ctxgen.cli import app

    path = make_scene_folder(tmp_path)
    runner = CliRunner()
    bad = runner.invoke(app, ["edit", str(path), "--model", "nope", "--no-browser"])
    assert bad.exit_code == 2 and "unknown preset 'nope'" in bad.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = runner.invoke(app, ["edit", str(path), "--port", str(port), "--no-browser"])
    assert busy.exit_code == 2 and f"--port {port}" in busy.output and "in use" in busy.output
    text_file = tmp_path / "photo.yaml"
    text_file.write_bytes(b"\xff\xfe not text")
    binary = runner.invoke(app, ["edit", str(text_file), "--no-browser", "--port", "0"])
    assert binary.exit_code == 1 and "not UTF-8 text" in binary.output
