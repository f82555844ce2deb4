"""`ctxgen render` at scale (tiny model): shards, skip and --force, failure isolation, exit codes, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctxgen.cli import app
from tests.model.helpers import manifest, write_scene
from ctxgen.outputs.metadata import read_metadata

REFS = Path(__file__).resolve().parents[2] / "examples" / "refs"
FAST = ["--model", "tiny", "--steps", "1", "--text-len", "16", "--no-overlays"]
FIELDS = {"scene", "seed", "status", "outputs", "key", "timings", "seconds", "peak_memory", "peak_rss", "error", "time"}


def invoke(*args: object):
    return CliRunner().invoke(app, ["render", *map(str, args)])


def assert_complete_outputs(out: Path) -> None:
    """No temp file anywhere; every image carries its key (nothing half-written)."""
    assert not list(out.rglob("*.part"))
    for png in out.rglob("seed-*.png"):
        assert (read_metadata(png) or {}).get("key"), png


def test_shards_cover_everything_then_rerun_skips_and_force_renders(tmp_path):
    scenes = [write_scene(tmp_path, f"s{k}", seed=10 * k) for k in range(3)]
    out, m = tmp_path / "out", tmp_path / "m.jsonl"
    for shard in ("0/2", "1/2"):
        res = invoke(*scenes, *FAST, "--samples", "2", "-o", out, "--manifest", m, "--shard", shard)
        assert res.exit_code == 0, res.output
    first = manifest(m)
    assert len(first) == 6 and {r["status"] for r in first} == {"ok"}
    assert all(FIELDS <= r.keys() for r in first)
    assert sorted((r["scene"], r["seed"]) for r in first) == sorted((str(p), 10 * k + j)
                                                                   for k, p in enumerate(scenes) for j in (0, 1))
    for rec in first:  # the PNG's metadata key is the manifest's key
        assert read_metadata(Path(rec["outputs"][0]))["key"] == rec["key"]
        assert rec["timings"]["sample_s"] > 0 and rec["error"] is None
    assert sum("load_s" in r["timings"] for r in first) == 2  # the model is loaded once per call
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("seed-*.png")}

    res = invoke(*scenes, *FAST, "--samples", "2", "-o", out, "--manifest", m)
    assert res.exit_code == 0, res.output
    again = manifest(m)[6:]
    assert [r["status"] for r in again] == ["skipped"] * 6
    assert not any(r["timings"] for r in again)  # nothing rendered, the model never loaded
    assert {p: p.stat().st_mtime_ns for p in out.rglob("seed-*.png")} == mtimes

    res = invoke(scenes[0], *FAST, "-o", out, "--manifest", m, "--force")
    assert res.exit_code == 0, res.output
    forced = manifest(m)[12:]
    assert [(r["status"], r["seed"]) for r in forced] == [("ok", 0)]
    png = Path(forced[0]["outputs"][0])
    (before,) = [r for r in first if r["scene"] == str(scenes[0]) and r["seed"] == 0]
    assert png.stat().st_mtime_ns != mtimes[png] and forced[0]["key"] == before["key"]


def test_failures_are_isolated_and_fail_fast_stops(tmp_path):
    good = write_scene(tmp_path, "good")
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt: x\nsize: [100, 256]\ninstances: []\n")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    broken = tmp_path / "broken.yaml"
    broken.write_text(good.read_text().replace(str(REFS / "dog.png"), str(tmp_path / "broken.png")))
    out, m = tmp_path / "out", tmp_path / "m.jsonl"

    res = invoke(bad, good, *FAST, "-o", out, "--manifest", m, "--fail-fast")
    assert res.exit_code == 1
    assert [r["status"] for r in manifest(m)] == ["failed"] and not (out / "good").exists()

    res = invoke(bad, broken, tmp_path / "missing.yaml", good, *FAST, "-o", out, "--manifest", m)
    assert res.exit_code == 1
    recs = {Path(r["scene"]).name: r for r in manifest(m)[1:]}
    assert {k: r["status"] for k, r in recs.items()} == {
        "bad.yaml": "failed", "broken.yaml": "failed", "missing.yaml": "failed", "good.yaml": "ok"}
    assert "size" in recs["bad.yaml"]["error"] and "bad.yaml:2" in recs["bad.yaml"]["error"]
    assert "not a readable image" in recs["broken.yaml"]["error"] and recs["broken.yaml"]["seed"] == 1
    assert "not found" in recs["missing.yaml"]["error"]
    assert str(out / "good" / "seed-1.png") in res.stdout
    assert "1 rendered, 0 skipped, 3 failed" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "2/2"], "--shard"),
        (["--shard", "x"], "--shard"),
        (["--devices", "gpu0"], "--devices"),
        (["--devices", "7"], "cuda:7"),
        (["--backend", "spark"], "--backend"),
        (["--model", "huge"], "--model"),
        (["--from", "no-such-list.txt"], "cannot read the scene list"),
    ],
)
def test_usage_errors_exit_2(tmp_path, args, message):
    res = invoke(write_scene(tmp_path, "a"), "--model", "tiny", "-o", tmp_path / "out", *args)
    assert res.exit_code == 2 and message in res.output
    assert not (tmp_path / "out").exists()


def test_no_scenes_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert invoke(tmp_path / "empty", "--model", "tiny").exit_code == 2
    assert invoke("--model", "tiny").exit_code == 2


def start_cli(*args: object) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ctxgen", "-q", "render", *map(str, args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_records(m: Path, n: int, proc: subprocess.Popen, timeout: float = 90) -> list[dict]:
    end = time.monotonic() + timeout
    while len(recs := manifest(m)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "no manifest line in time"
        time.sleep(0.01)
    return recs


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_sigkill_mid_run_leaves_no_partial_image_and_rerun_finishes(tmp_path):
    scenes = [write_scene(tmp_path, f"k{k}", seed=k) for k in range(8)]
    out, m = tmp_path / "out", tmp_path / "m.jsonl"
    args = [*scenes, "--model", "tiny", "--steps", "2", "--text-len", "16", "-o", out, "--manifest", m]
    proc = start_cli(*args)
    wait_for_records(m, 1, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {r["scene"] for r in manifest(m)}
    assert 1 <= len(done) < 8  # killed with work left
    assert_complete_outputs(out)
    stale = out / "k7" / ".seed-7.png.abc123.png.part"  # what a kill during the write leaves
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a png")

    res = invoke(*args)
    assert res.exit_code == 0, res.output
    rerun = manifest(m)[len(done):]
    assert {r["scene"]: r["status"] for r in rerun} == {
        str(p): "skipped" if str(p) in done else "ok" for p in scenes}
    assert_complete_outputs(out)


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_sigterm_exits_130_and_removes_temp_files(tmp_path):
    scenes = [write_scene(tmp_path, f"t{k}", seed=k) for k in range(8)]
    out, m = tmp_path / "out", tmp_path / "m.jsonl"
    proc = start_cli(*scenes, "--model", "tiny", "--steps", "2", "--text-len", "16", "-o", out, "--manifest", m)
    wait_for_records(m, 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert len(manifest(m)) < 8
    assert_complete_outputs(out)
