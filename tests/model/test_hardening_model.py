"""Issue 11's defects on the tiny model: output sets, orphans, concurrent runs, pool workers, manifests, signals,
adapters and pickled index shards. Subprocess tests use bounded timeouts; pauses are injected through ctxgen's own
atomic-write layer (tests/inject.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.outputs.commit import read_key
from ctxgen.outputs.metadata import read_metadata
from tests.faults import fail_writes
from tests.model.helpers import manifest, write_scene

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
FAST = ["--steps", "1", "--text-len", "16", "--device", "cpu"]


def model_args(tiny_model_dir: Path) -> list[str]:
    return ["--base", str(tiny_model_dir / "base"), "--adapter", str(tiny_model_dir / "adapter")]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".part") or p.name.endswith(".lock")]


def cli(*args: object, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ctxgen", *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)


def injected(when: str, marker: Path, *args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "tests" / "inject.py"), when, str(marker), "--",
                             *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"{path} did not appear in time"
        time.sleep(0.02)


# -- 1: a failed --force render keeps the complete old set ---------------------------------------------------
def test_failed_force_render_keeps_the_old_set(tiny_model_dir, tmp_path, monkeypatch):
    scene = write_scene(tmp_path, "f", seed=3)
    args = ["render", str(scene), *model_args(tiny_model_dir), "--out", str(tmp_path / "out"), *FAST]
    assert runner.invoke(app, args).exit_code == 0
    folder = tmp_path / "out" / "f"
    before = snapshot(folder)
    assert sorted(before) == ["seed-3.debug/instance-0.png", "seed-3.debug/layout.png", "seed-3.debug/masks.png",
                              "seed-3.json", "seed-3.png"]
    with monkeypatch.context() as m:
        fail_writes(m, lambda path, n: path.name == "seed-3.png")  # the disk fills up at the image
        res = runner.invoke(app, [*args, "--force"])
    assert res.exit_code == 1 and "write failed (No space left on device)" in res.stderr
    assert snapshot(folder) == before and no_temp_files(tmp_path / "out")
    res = runner.invoke(app, [*args, "--json"])
    assert json.loads(res.stdout)["results"][0]["status"] == "skipped"  # the old set is complete: done
    (folder / "seed-3.debug" / "masks.png").unlink()  # an incomplete set is not done: it is rendered again
    res = runner.invoke(app, [*args, "--json"])
    assert json.loads(res.stdout)["results"][0]["status"] == "ok"
    assert read_key(folder / "seed-3.debug" / "masks.png") == read_metadata(folder / "seed-3.png")["key"]


# -- 1 and 6: killed between publishing the sidecar and the image, a seedless scene's set is adopted -----------
@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_kill_before_the_image_is_published_then_rerun_adopts_the_seed(tiny_model_dir, tmp_path):
    scene = tmp_path / "noseed.yaml"
    scene.write_text(write_scene(tmp_path, "tmp").read_text().replace("seed: 1\n", ""))
    out, marker = tmp_path / "out", tmp_path / "paused"
    args = ["render", scene, *model_args(tiny_model_dir), "--out", out, *FAST]
    proc = injected(r"publish:noseed/seed-\d+\.png$", marker, *args)
    wait_for(marker, proc, timeout=90)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    folder = out / "noseed"
    orphans = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert len(orphans) == 2 and orphans[0].endswith(".debug") and orphans[1].endswith(".json")  # no image yet
    seed = json.loads((folder / orphans[1]).read_text())["seed"]
    res = runner.invoke(app, [str(a) for a in args] + ["--json"])
    assert res.exit_code == 0, res.output
    (rec,) = json.loads(res.stdout)["results"]
    assert rec["status"] == "ok" and rec["seed"] == seed  # the drawn seed was found again, not a new one
    assert sorted(p.name for p in folder.iterdir()) == [f"seed-{seed}.debug", f"seed-{seed}.json", f"seed-{seed}.png"]
    assert no_temp_files(out)


# -- 2: two runs of the same command into one --out ----------------------------------------------------------
@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_two_concurrent_runs_finish_and_render_each_seed_once(tiny_model_dir, tmp_path):
    scenes = [write_scene(tmp_path, f"c{k}", seed=k) for k in range(3)]
    out = tmp_path / "out"
    procs = [cli("render", *scenes, *model_args(tiny_model_dir), "--out", out, *FAST, "--no-overlays",
                 "--manifest", tmp_path / f"m{i}.jsonl") for i in range(2)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr
        assert "write failed" not in stderr
    recs = manifest(tmp_path / "m0.jsonl") + manifest(tmp_path / "m1.jsonl")
    ok = sorted(r["scene"] for r in recs if r["status"] == "ok")
    assert ok == sorted(map(str, scenes))  # each seed rendered exactly once between the two runs
    assert all(r["status"] == "skipped" for r in recs if r not in [x for x in recs if x["status"] == "ok"])
    assert no_temp_files(out)
    for s in scenes:
        assert read_metadata(out / s.stem / f"seed-{s.stem[1:]}.png")["key"]


# -- 3: pool workers die with their parent ------------------------------------------------------------------
def children_of(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found |= {int(c) for c in text.split()}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from /proc (Linux)")
def test_killing_the_parent_ends_the_pool_workers(tiny_model_dir, tmp_path):
    scenes = [write_scene(tmp_path, f"p{k}", seed=k) for k in range(4)]
    out = tmp_path / "out"
    proc = cli("render", *scenes, *model_args(tiny_model_dir), "--out", out, "--device", "cpu", "--text-len", "16",
               "--steps", "60", "--samples", "3", "--no-overlays", "--devices", "cpu:2")
    end = time.monotonic() + 90
    while not list(out.glob(".*.lock")):  # a worker holds a scene: it is rendering (about 10 s of work per scene)
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.05)
    workers = children_of(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    end = time.monotonic() + 5
    while any(alive(w) for w in workers) and time.monotonic() < end:
        time.sleep(0.1)
    assert not [w for w in workers if alive(w)], "pool workers outlived their parent"
    assert no_temp_files(out)  # they stopped cleanly: temp files removed, locks released


# -- 4: a manifest that cannot be written ---------------------------------------------------------------------
def test_manifests_that_cannot_be_written(tiny_model_dir, tmp_path, monkeypatch):
    scene = write_scene(tmp_path, "m", seed=1)
    base = ["render", str(scene), *model_args(tiny_model_dir), "--out", str(tmp_path / "out"), *FAST]
    for target, why in (("/dev/full", "must be a regular file"), (str(tmp_path), "cannot write the manifest")):
        res = runner.invoke(app, [*base, "--manifest", target])
        assert res.exit_code == 1 and len(res.stderr.splitlines()) == 1 and why in res.stderr, res.stderr
        assert not (tmp_path / "out").exists()

    def full(fd, line):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ctxgen.batch.manifest.append_line", full)
    res = runner.invoke(app, [*base, "--manifest", str(tmp_path / "m.jsonl")])
    assert res.exit_code == 1
    assert res.stderr.splitlines()[-1].startswith(f"error {tmp_path / 'm.jsonl'}: manifest write failed")


# -- 12: signals end every command cleanly ------------------------------------------------------------------
def test_sigterm_during_a_layout_write_exits_130_and_leaves_no_temp_file(tmp_path):
    out, marker = tmp_path / "out", tmp_path / "paused"
    proc = injected(r"stage:small/layout\.png$", marker, "layout", ROOT / "examples" / "small.yaml", "--out", out)
    wait_for(marker, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in stderr and "interrupted" in stderr, stderr
    assert no_temp_files(out)
    assert list(out.rglob("layout.png")) == []


def test_sigterm_during_validate_exits_130(tmp_path):
    marker = tmp_path / "paused"
    proc = injected("check", marker, "validate", ROOT / "examples" / "small.yaml")
    wait_for(marker, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr


def handlers_installed(pid: int, sig: int) -> bool:
    """The process catches `sig` (its SigCgt mask in /proc says so): ctxgen's first statement has run."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught >> (sig - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads signal masks from /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_at_start_up_exits_130_without_a_traceback(tmp_path, sig):
    """Python cannot catch a signal before its first statement runs; from then on (importing typer, torch,
    parsing the command line) every signal ends with exit 130 and no traceback."""
    proc = cli("render", ROOT / "examples" / "small.yaml", "--model", "tiny", "--out", tmp_path / "out")
    end = time.monotonic() + 30
    while not handlers_installed(proc.pid, signal.SIGTERM):  # Python itself catches SIGINT from its very start
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.002)
    proc.send_signal(sig)  # right after the handlers are in place: still deep in the imports
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert not (tmp_path / "out").exists()


# -- 17 and 8: adapters and weights that must be refused ------------------------------------------------------
def adapter_file(tiny_model_dir: Path) -> Path:
    return sorted((tiny_model_dir / "adapter").glob("*.safetensors"))[-1]


def render_with_adapter(tiny_model_dir: Path, tmp_path: Path, adapter: Path | str, base: Path | None = None):
    scene = write_scene(tmp_path, "a", seed=1)
    return runner.invoke(app, ["render", str(scene), "--base", str(base or tiny_model_dir / "base"), "--adapter",
                               str(adapter), "--out", str(tmp_path / "out"), *FAST, "--no-overlays"])


def test_adapter_files_that_are_not_loras(tiny_model_dir, tmp_path):
    tensors = load_file(str(adapter_file(tiny_model_dir)))
    save_file(tensors, str(tmp_path / "listmeta_1.safetensors"), metadata={"lora_adapter_metadata": "[1, 2]"})
    save_file({k: v.to(torch.float8_e4m3fn) for k, v in tensors.items()}, str(tmp_path / "f8_1.safetensors"))
    cases = {tmp_path / "listmeta_1.safetensors": "lora_adapter_metadata header is not a JSON object",
             tmp_path / "f8_1.safetensors": "has dtype float8_e4m3fn",
             Path("/etc/passwd"): "/etc/passwd: not a safetensors file"}
    for adapter, message in cases.items():
        res = render_with_adapter(tiny_model_dir, tmp_path, adapter)
        assert res.exit_code == 1 and message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and all(line.startswith(("error", "stopping", "0 rendered"))
                                                     for line in res.stderr.splitlines()), res.stderr


def test_overflowing_adapter_weights_are_reported_not_rendered_black(tiny_model_dir, tmp_path):
    tensors = {k: torch.full_like(v, 3e38) for k, v in load_file(str(adapter_file(tiny_model_dir))).items()}
    save_file(tensors, str(tmp_path / "huge_1.safetensors"))
    res = render_with_adapter(tiny_model_dir, tmp_path, tmp_path / "huge_1.safetensors")
    assert res.exit_code == 1 and "the model produced NaN or infinite values" in res.stderr, res.stderr
    assert not list((tmp_path / "out").rglob("*.png"))


def test_a_weight_index_pointing_at_a_pickle_is_refused(tiny_model_dir, tmp_path, monkeypatch):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir / "base", base)
    (base / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    (base / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"a pickle would be here")
    index = {"metadata": {}, "weight_map": {"x_embedder.weight": "diffusion_pytorch_model.bin"}}
    (base / "transformer" / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_unpickling)
    res = render_with_adapter(tiny_model_dir, tmp_path, "none", base=base)
    assert res.exit_code == 1 and "refusing to unpickle" in res.stderr, res.stderr
    assert "transformer/diffusion_pytorch_model.safetensors.index.json: diffusion_pytorch_model.bin" in res.stderr
