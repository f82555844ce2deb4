"""--backend ray: Ray Data actors (two, on CPU, in a local Ray) render scenes; the driver writes the manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.outputs.metadata import read_metadata

pytest.importorskip("ray", reason="the Ray backend needs the optional extra: pip install 'ctxgen[ray]'")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")  # Ray's own internals

REFS = Path(__file__).resolve().parents[2] / "examples" / "refs"


def write_scene(folder: Path, name: str, seed: int) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f'prompt: "a {name}"\nsize: [256, 256]\nseed: {seed}\ninstances:\n'
                    f"  - image: {REFS / 'robot.png'}\n    box: [30, 30, 220, 230]\n")
    return path


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_two_local_cpu_actors_render_and_the_driver_writes_the_manifest(tmp_path):
    scenes = [write_scene(tmp_path, f"r{k}", seed=k) for k in range(2)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt: x\nsize: [256, 256]\ninstances: []\n")
    out, m = tmp_path / "out", tmp_path / "m.jsonl"
    res = CliRunner().invoke(app, ["render", *map(str, [*scenes, bad]), "--model", "tiny", "--steps", "1",
                                   "--text-len", "16", "--no-overlays", "-o", str(out), "--manifest", str(m),
                                   "--backend", "ray", "--devices", "cpu:2"])
    assert res.exit_code == 1, res.output  # the bad scene failed, the others rendered
    recs = [json.loads(line) for line in m.read_text().splitlines()]
    by_scene = {Path(r["scene"]).name: r for r in recs}
    assert len(recs) == 3 and {k: r["status"] for k, r in by_scene.items()} == {
        "r0.yaml": "ok", "r1.yaml": "ok", "bad.yaml": "failed"}
    assert "instances" in by_scene["bad.yaml"]["error"]
    for name, seed in (("r0", 0), ("r1", 1)):
        rec = by_scene[f"{name}.yaml"]
        png = out.resolve() / name / f"seed-{seed}.png"
        assert rec["outputs"][0] == str(png) and read_metadata(png)["key"] == rec["key"]
        assert rec["device"] == "cpu" and rec["timings"]["sample_s"] > 0
    pids = {r["pid"] for r in recs}
    assert os.getpid() not in pids  # rendered in the actors, written by the driver
