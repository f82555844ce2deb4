"""--devices: worker processes fed from one queue (two CPU workers here); dead workers and Ctrl-C are handled."""

from __future__ import annotations

import pytest

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from ctxgen.cli import app
from tests.model.helpers import manifest, write_scene
from ctxgen.outputs.metadata import read_metadata

TINY = ["--model", "tiny", "--text-len", "16"]


def assert_complete_outputs(out: Path) -> None:
    assert not list(out.rglob("*.part"))
    for png in out.rglob("seed-*.png"):
        assert (read_metadata(png) or {}).get("key"), png


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_two_cpu_workers_share_the_queue(tmp_path):
    scenes = [write_scene(tmp_path, f"p{k}", seed=k, ref="ball.png") for k in range(4)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt: [\n")
    out, m = tmp_path / "out", tmp_path / "m.jsonl"
    args = ["render", *map(str, scenes), *TINY, "--steps", "1", "--no-overlays", "-o", str(out), "--manifest", str(m)]
    res = CliRunner().invoke(app, [*args, str(bad), "--devices", "cpu:2"])
    assert res.exit_code == 1, res.output
    recs = manifest(m)
    assert sorted(r["scene"] for r in recs) == sorted(map(str, [*scenes, bad]))  # each scene exactly once
    ok = [r for r in recs if r["status"] == "ok"]
    assert len(ok) == 4 and len({r["pid"] for r in ok}) == 2 and os.getpid() not in {r["pid"] for r in recs}
    assert sum("load_s" in r["timings"] for r in ok) == 2  # one model load per worker
    for rec in ok:
        assert Path(rec["outputs"][0]).is_file()
    for line in res.stdout.splitlines():  # the parent alone prints results: whole lines, never interleaved
        assert line in {p for r in ok for p in r["outputs"]}, line
    again = CliRunner().invoke(app, args)  # one in-process worker computes the same keys: nothing to redo
    assert again.exit_code == 0 and [r["status"] for r in manifest(m)[5:]] == ["skipped"] * 4


def start(args: list[str]) -> tuple[subprocess.Popen, list[str]]:
    """The CLI in a subprocess; its stderr lines are collected by a thread."""
    proc = subprocess.Popen([sys.executable, "-m", "ctxgen", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    return proc, lines


def wait_until(predicate, proc: subprocess.Popen, timeout: float = 90):
    end = time.monotonic() + timeout
    while not (found := predicate()):
        assert proc.poll() is None and time.monotonic() < end
        time.sleep(0.01)
    return found


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_a_killed_worker_fails_its_scene_and_the_rest_finish(tmp_path):
    scenes = [write_scene(tmp_path, f"k{k}", seed=k, ref="ball.png") for k in range(5)]
    out, m = tmp_path / "out", tmp_path / "m.jsonl"
    proc, lines = start(["-v", "render", *map(str, scenes), *TINY, "--steps", "2", "-o", str(out),
                         "--manifest", str(m), "--devices", "cpu:2"])

    def dispatched():  # "worker PID on cpu: rendering SCENE", logged when a scene is sent (before the model loads)
        return next((re.search(r"worker (\d+) on cpu", ln) for ln in list(lines) if "rendering" in ln), None)

    victim = int(wait_until(dispatched, proc).group(1))
    os.kill(victim, signal.SIGKILL)
    assert proc.wait(timeout=120) == 1, "".join(lines)
    recs = manifest(m)
    assert sorted({r["scene"] for r in recs}) == sorted(map(str, scenes))
    failed = [r for r in recs if r["status"] == "failed"]
    assert len(failed) == 1 and "died (killed by SIGKILL)" in failed[0]["error"]
    assert len([r for r in recs if r["status"] == "ok"]) == 4 and victim not in {r["pid"] for r in recs}
    assert_complete_outputs(out)


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_ctrl_c_stops_the_workers_and_exits_130(tmp_path):
    scenes = [write_scene(tmp_path, f"c{k}", seed=k, ref="ball.png") for k in range(10)]
    out, m = tmp_path / "out", tmp_path / "m.jsonl"
    proc, lines = start(["render", *map(str, scenes), *TINY, "--steps", "2", "-o", str(out), "--manifest", str(m),
                         "--devices", "cpu:2"])
    first = wait_until(lambda: manifest(m), proc)
    proc.send_signal(signal.SIGINT)  # to the parent only
    assert proc.wait(timeout=60) == 130, "".join(lines)
    assert any("interrupted" in ln for ln in lines)
    assert len(manifest(m)) < 10
    time.sleep(0.5)
    for pid in {r["pid"] for r in first}:  # no worker outlives the parent
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"worker {pid} still running")
    assert_complete_outputs(out)
