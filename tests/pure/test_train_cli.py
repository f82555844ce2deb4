"""`ctxgen train` without a model: schema, plot, and config errors (one line each, exit 1, nothing written)."""

from __future__ import annotations

import json

import numpy as np

from PIL import Image
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.train.plot import read_log, series, smooth
from tests.train_helpers import train_root, write_config  # noqa: F401  (fixture)

runner = CliRunner()


def test_schema_prints_json():
    res = runner.invoke(app, ["train", "schema"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["title"] == "ctxgen training config"


def test_plot_writes_curves_and_skips_a_cut_line(tmp_path):
    log = tmp_path / "log.jsonl"
    lines = [json.dumps({"step": s, "loss": 1.0 / s, "lr": 1e-4, "grad_norm": 0.5}) for s in range(1, 30)]
    lines.append(json.dumps({"step": 29, "loss": 0.01, "lr": 1e-4}))  # a resumed run logs a step again: last wins
    log.write_text("\n".join(lines) + '\n{"step": 30, "lo')  # a kill cut the last line
    assert len(read_log(log)) == 30
    assert series(read_log(log), "loss")[-1] == (29, 0.01)
    res = runner.invoke(app, ["train", "plot", str(tmp_path)])
    assert res.exit_code == 0, res.output
    png = tmp_path / "loss.png"
    assert res.stdout.strip() == str(png)
    im = Image.open(png)
    assert im.size == (640, 3 * 240)  # loss, lr, grad_norm
    assert len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 3


def test_smoothing_is_bias_corrected():
    assert smooth([2.0, 2.0, 2.0]) == [2.0, 2.0, 2.0]
    assert smooth([0.0, 1.0], weight=0.5)[1] == 1.0 * 0.5 / 0.75


def test_plot_of_a_missing_log_is_one_line(tmp_path):
    res = runner.invoke(app, ["train", "plot", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 1 and "no such log" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_bad_config_exits_1_and_writes_nothing(train_root):
    out = train_root / "never"
    path = write_config(train_root, "bad-cli.yaml", lora={"rank": 0}, extra_key=1)
    res = runner.invoke(app, ["train", "sft", str(path), "--output", str(out)])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error ") for line in lines)
    assert "extra_key: unknown key" in res.stderr and "lora.rank: Input should be greater than 0" in res.stderr
    assert not out.exists()


def test_dpo_without_adapter_and_missing_shards(train_root):
    path = write_config(train_root, "bad-dpo.yaml", data={"shards": "missing"})
    res = runner.invoke(app, ["train", "dpo", str(path), "--dry-run"])
    assert res.exit_code == 1
    assert "model.init_adapter: required" in res.stderr and "data.shards:" in res.stderr
