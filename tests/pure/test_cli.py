"""The model-free CLI commands through typer's runner: validate, schema, layout (R1-R19 end to end)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from ctxgen.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_validate_accepts_every_example():
    scenes = sorted(EXAMPLES.glob("*.yaml"))
    res = invoke("validate", *scenes)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [f"ok {p}" for p in scenes]


def test_validate_reports_problems_and_exits_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt: x\nsize: [100, 768]\ninstances: []\n")
    res = invoke("validate", bad, "--json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and len(doc["errors"]) == 2
    assert doc["errors"][0].startswith(f"{bad}:2:")
    assert "size" in doc["errors"][0] and "instances" in doc["errors"][1]


def test_validate_folder_and_missing_file(tmp_path):
    res = invoke("validate", tmp_path / "nope.yaml")
    assert res.exit_code == 1 and "nope.yaml" in res.output
    folder = tmp_path / "examples"  # the bundled scenes (examples/ also holds training and construction configs)
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("train", "construct", "eval"))
    res = invoke("validate", folder)
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == len(list(EXAMPLES.glob("*.yaml")))


def test_schema_is_json_schema_of_the_scene():
    res = invoke("schema")
    assert res.exit_code == 0
    schema = json.loads(res.stdout)
    assert "prompt" in schema["properties"] and "instances" in schema["properties"]
    assert schema.get("additionalProperties") is False


def test_layout_writes_layout_preview_and_dump(tmp_path):
    res = invoke("layout", EXAMPLES / "park.yaml", "--out", tmp_path, "--preview", "--dump", "--text-len", "32", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    files = {k: Path(v) for k, v in doc["files"].items()}
    assert set(files) == {"layout", "preview", "order", "tokens"}
    assert all(p.parent == tmp_path / "park" for p in files.values())
    assert Image.open(files["layout"]).size == (768, 768)
    assert Image.open(files["preview"]).width > 768
    order = json.loads(files["order"].read_text())
    assert sorted(order["order"]) == [0, 1, 2]
    dump = np.load(files["tokens"])
    assert int(dump["text_len"]) == 32
    names = [str(n) for n in dump["seg_names"]]
    assert names == ["text", "main", "layout", "ref0", "ref1", "ref2"]
    bounds = dump["seg_bounds"]
    s = int(bounds[-1, 1])
    assert dump["ids"].shape == (s - 32, 3) and dump["ids"].dtype == np.float32
    cla = np.unpackbits(dump["mask_cla"], axis=-1, count=s).astype(bool)
    ica = np.unpackbits(dump["mask_ica"], axis=-1, count=s).astype(bool)
    assert cla.shape == (s, s) and (ica >= cla).all() and ica.sum() > cla.sum()  # ICA adds box -> ref pairs (R16)
    main = slice(int(bounds[1, 0]), int(bounds[1, 1]))
    ref0 = slice(int(bounds[3, 0]), int(bounds[3, 1]))
    assert not cla[main, ref0].any() and ica[main, ref0].any()


def test_layout_bad_scene_writes_nothing_and_others_continue(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt: x\ninstances:\n  - image: missing.png\n    box: [0, 0, 10, 10]\n")
    out = tmp_path / "out"
    res = invoke("layout", bad, EXAMPLES / "nested.yaml", "--out", out)
    assert res.exit_code == 1
    assert "missing.png" in res.output
    assert not (out / "bad").exists()
    assert (out / "nested" / "layout.png").is_file()


def test_layout_user_layout_example(tmp_path):
    res = invoke("layout", EXAMPLES / "user_layout.yaml", "--out", tmp_path, "--dump")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "user_layout" / "order.json").read_text())["order"] == []


def test_help_and_validate_never_import_torch():
    code = ("import sys; from typer.testing import CliRunner; from ctxgen.cli import app; "
            f"r = CliRunner().invoke(app, ['validate', {str(EXAMPLES / 'park.yaml')!r}]); "
            "assert r.exit_code == 0, r.output; "
            "heavy = {'torch', 'diffusers', 'transformers', 'peft'} & {m.split('.')[0] for m in sys.modules}; "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_out = subprocess.run([sys.executable, "-m", "ctxgen", "--help"], capture_output=True, text=True, check=True)
    assert "render" in help_out.stdout and "layout" in help_out.stdout
