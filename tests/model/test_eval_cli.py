"""`ctxgen eval` end to end with tiny-random and reference roles: closed-form scores, resuming, missing images,
bad input, prepare -> validate, the report, identity."""

from __future__ import annotations

import pytest

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from ctxgen.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import eval_helpers as h  # noqa: E402


def run(*args: str):
    return CliRunner().invoke(app, ["eval", *args, "--device", "cpu"] if args[0] not in ("prepare", "report",
                                                                                          "convert-aesthetic")
                              else ["eval", *args])


def test_cocomig_reference_roles_give_the_closed_form_and_resume(tmp_path):
    bench, images = h.write_cocomig(tmp_path)
    args = ("cocomig", str(bench), "--images", str(images), "--out", str(tmp_path / "run"), "--no-clip",
            "--role", "detector=reference", "--role", "segmenter=reference", "--json")
    res = run(*args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[0])["all"]
    # case 0: both right; case 1: the dog is blue -> fails and contributes 0 to mIoU
    assert (summary["SR"], summary["I-SR"], summary["mIoU"]) == (50.0, 75.0, 75.0)
    again = run(*args)
    assert "0 scored now, 2 in total" in again.stderr
    (images / "0001.png").unlink()
    missing = run(*args)
    assert "1 image(s) missing" in missing.stderr and json.loads(missing.stdout.splitlines()[0])["all"]["SR"] == 100.0


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_lamic_tiny_random_and_reference_answers(tmp_path):
    bench, images = h.write_lamic(tmp_path)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"*": {"Based on the image, answer my question with only one word 'yes' or 'no'. "
                                         "Question: Is there a dog?": "Yes.", "*": "no"}}))
    res = run("lamic", str(bench), "--images", str(images), "--samples", "1", "--models", "tiny-random",
              "--role", f"vqa=reference:{answers}", "--out", str(tmp_path / "run"), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert data["summary"]["all"]["ITC"] == 50.0  # one "yes" of two questions, per image
    rec = data["images"][0]
    assert rec["n_refs"] == 2 and len(rec["ids"]) == 1 and len(rec["ips"]) == 1
    assert data["summary"]["2-3"]["samples"] == 1 and data["summary"]["4+"]["objects"] == 4
    corrected = run("lamic", str(bench), "--images", str(images), "--samples", "1", "--models", "tiny-random",
                    "--role", f"vqa=reference:{answers}", "--variant", "corrected", "--out", str(tmp_path / "run2"))
    assert corrected.exit_code == 0, corrected.output


def test_layoutsam_reference_vqa_and_wrong_size(tmp_path):
    bench, images = h.write_layoutsam(tmp_path)
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps({"0000.png": {"*": "Yes"}, "*": {"*": "No"}}))
    Image.new("RGB", (96, 64)).save(images / "0001.png")  # not square
    res = run("layoutsam", str(bench), "--images", str(images), "--models", "tiny-random", "--role",
              f"vqa=reference:{answers}", "--no-clip", "--out", str(tmp_path / "run"), "--json")
    assert res.exit_code == 1
    assert "0001.png size: 96x64 is not square" in res.stderr
    s = json.loads(res.stdout.splitlines()[0])["all"]
    assert (s["spatial"], s["colour"], s["boxes"]) == (100.0, 100.0, 2)


def test_bad_models_file_and_bench(tmp_path):
    bench, images = h.write_cocomig(tmp_path)
    models = tmp_path / "EVAL.yaml"
    models.write_text("detektor: x/y\n")
    res = run("cocomig", str(bench), "--images", str(images), "--models", str(models))
    assert res.exit_code == 2 and "EVAL.yaml detektor: unknown role" in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    res = run("cocomig", str(bad), "--images", str(images))
    assert res.exit_code == 1 and "bad.json (top level): expected" in res.stderr
    res = run("cocomig", str(bench), "--images", str(images), "--role", "detector=/no/such/folder")
    assert res.exit_code == 1 and "detector: '/no/such/folder' is neither a local folder nor a hub id" in res.stderr


def test_prepare_writes_scenes_that_validate_and_report(tmp_path):
    bench, _ = h.write_lamic(tmp_path)
    res = run("prepare", "lamic", str(bench), "--out", str(tmp_path / "scenes"))
    assert res.exit_code == 0, res.output
    scenes = sorted((tmp_path / "scenes").glob("*.yaml"))
    assert [p.name for p in scenes] == ["lamic-0000.yaml", "lamic-0001.yaml"]
    assert CliRunner().invoke(app, ["validate", *map(str, scenes)]).exit_code == 0
    assert "0 scene(s) written" in run("prepare", "lamic", str(bench), "--out", str(tmp_path / "scenes")).stderr
    mig, images = h.write_cocomig(tmp_path / "m")
    for name in ("a", "b"):
        run("cocomig", str(mig), "--images", str(images), "--no-clip", "--role", "detector=reference",
            "--role", "segmenter=reference", "--out", str(tmp_path / name))
    out = tmp_path / "report.html"
    res = run("report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out))
    page = out.read_text()
    assert res.exit_code == 0 and "<script" not in page and page.count("data:image/jpeg;base64") >= 4
    assert "<svg" in page and "75.00" in page


def test_identity_on_a_render_folder(tmp_path, make_scene=None):
    ref = np.zeros((32, 32, 4), np.uint8)
    ref[4:28, 4:28] = (200, 30, 30, 255)
    Image.fromarray(ref, "RGBA").save(tmp_path / "cut.png")
    (tmp_path / "s.yaml").write_text("prompt: a red thing\nsize: [256, 256]\nseed: 7\ninstances:\n"
                                     "  - image: cut.png\n    box: [32, 32, 128, 128]\n    label: thing\n")
    (tmp_path / "renders" / "s").mkdir(parents=True)
    h.square(256, [([32, 32, 128, 128], h.RED)]).save(tmp_path / "renders" / "s" / "seed-7.png")
    res = run("identity", str(tmp_path / "s.yaml"), "--images", str(tmp_path / "renders"), "--models", "tiny-random",
              "--out", str(tmp_path / "run"), "--json")
    assert res.exit_code == 0, res.output
    inst = json.loads((tmp_path / "run" / "metrics.json").read_text())["images"][0]["instances"][0]
    assert inst["box"] == [32, 32, 128, 128] and -1.0 <= inst["dino"] <= 1.0 and -1.0 <= inst["clip"] <= 1.0
