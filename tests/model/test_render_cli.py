"""`ctxgen render` end to end on the tiny model saved to disk (the same loading path as real weights)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.outputs.metadata import read_metadata

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()
FAST = ["--steps", "2", "--text-len", "16"]


def render(tiny_model_dir: Path, out: Path, *extra: str, scene: Path = EXAMPLES / "small.yaml"):
    args = ["render", str(scene), "--base", str(tiny_model_dir / "base"), "--adapter", str(tiny_model_dir / "adapter"),
            "--out", str(out), "--device", "cpu", "--json", *FAST, *extra]
    res = runner.invoke(app, args)
    return res, [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def first_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    res, docs = render(tiny_model_dir, out, "--seed", "7", "--seed", "8")
    assert res.exit_code == 0, res.output
    return out, docs


def test_images_metadata_and_overlays(first_run, tiny_model_dir):
    out, docs = first_run
    (doc,) = docs
    assert doc["ok"] and [r["status"] for r in doc["results"]] == ["ok", "ok"]
    folder = out / "small"
    for seed in (7, 8):
        png = folder / f"seed-{seed}.png"
        im = Image.open(png)
        assert im.size == (256, 256) and im.mode == "RGB"
        meta = read_metadata(png)
        assert meta["seed"] == seed and meta["settings"]["steps"] == 2 and meta["settings"]["text_len"] == 16
        assert meta["settings"]["base"] == str(tiny_model_dir / "base")
        assert meta["settings"]["adapter_sha256"] and len(meta["files"]) == 3
        assert "Modify the image to depict" in meta["wrapped_prompt"]
        sidecar = json.loads((folder / f"seed-{seed}.json").read_text())
        assert sidecar["key"] == meta["key"]
        debug = folder / f"seed-{seed}.debug"
        names = sorted(p.name for p in debug.iterdir())
        assert names == ["instance-0.png", "instance-1.png", "instance-2.png", "layout.png", "masks.png"]
        assert Image.open(debug / "layout.png").size == (256, 256)
    a = np.asarray(Image.open(folder / "seed-7.png"))
    b = np.asarray(Image.open(folder / "seed-8.png"))
    assert not np.array_equal(a, b)  # another seed, another image
    assert not list(folder.rglob("*.part"))


def test_rerun_skips_and_force_renders_bit_identically(first_run, tiny_model_dir):
    out, _ = first_run
    png = out / "small" / "seed-7.png"
    before = png.read_bytes()
    res, (doc,) = render(tiny_model_dir, out, "--seed", "7", "--no-overlays")
    assert res.exit_code == 0 and doc["results"][0]["status"] == "skipped"
    res, (doc,) = render(tiny_model_dir, out, "--seed", "7", "--force", "--no-overlays")
    assert res.exit_code == 0 and doc["results"][0]["status"] == "ok"
    after = Image.open(png)
    assert np.array_equal(np.asarray(after), np.asarray(Image.open(io.BytesIO(before))))


def test_changed_option_changes_key_and_renders_again(first_run, tiny_model_dir):
    out, _ = first_run
    res, (doc,) = render(tiny_model_dir, out, "--seed", "7", "--guidance", "2.0", "--no-overlays")
    assert res.exit_code == 0 and doc["results"][0]["status"] == "ok"


def test_bad_scene_fails_alone(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt: x\nsize: [256, 256]\ninstances:\n  - image: nope.png\n    box: [0, 0, 10, 10]\n")
    res, docs = render(tiny_model_dir, tmp_path / "out", "--no-overlays", scene=bad)
    assert res.exit_code == 1
    assert docs[0]["ok"] is False and "nope.png" in docs[0]["results"][0]["error"]
    assert not (tmp_path / "out" / "bad").exists()


def test_builtin_tiny_preset_renders(tmp_path):
    res = runner.invoke(app, ["render", str(EXAMPLES / "small.yaml"), "--model", "tiny", "--out", str(tmp_path),
                              "--steps", "1", "--text-len", "8", "--no-overlays"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == str(tmp_path / "small" / "seed-7.png")


def test_reproduce_from_metadata_gives_identical_pixels(first_run, tmp_path):
    out, _ = first_run
    res = runner.invoke(app, ["reproduce", str(out / "small" / "seed-8.png"), "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["identical"] is True and doc["max_abs_diff"] == 0
    assert Path(doc["reproduced"]) == tmp_path / "small" / "seed-8.png"


def test_reproduce_refuses_changed_references(first_run, tmp_path):
    out, _ = first_run
    png = out / "small" / "seed-8.png"
    meta = read_metadata(png)
    meta["files"] = {k: "0" * 64 for k in meta["files"]}
    from ctxgen.outputs.metadata import write_image

    forged = tmp_path / "forged.png"
    write_image(forged, np.asarray(Image.open(png)), meta)
    res = runner.invoke(app, ["reproduce", str(forged), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "changed or is missing" in res.output


def test_reproduce_rebuilds_every_setting_of_a_non_default_render(tiny_model_dir, tmp_path):
    """A render with --attention flex --memory balanced (not the CPU defaults) is reproduced with the same settings:
    the reproduced image carries the same key (which covers the kernel and the tier) and the same pixels."""
    out = tmp_path / "first"
    res, _ = render(tiny_model_dir, out, "--seed", "3", "--attention", "flex", "--memory", "balanced",
                    "--no-overlays", scene=EXAMPLES / "small.yaml")
    assert res.exit_code == 0, res.output
    png = out / "small" / "seed-3.png"
    original = read_metadata(png)
    assert (original["settings"]["attention"], original["settings"]["memory"]) == ("flex", "balanced")
    res = runner.invoke(app, ["reproduce", str(png), "--out", str(tmp_path / "again"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    again = read_metadata(Path(doc["reproduced"]))
    assert again["settings"] == original["settings"] and again["key"] == original["key"]
    assert doc["identical"] is True
