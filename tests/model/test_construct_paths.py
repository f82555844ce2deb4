"""`ctxgen dataset construct` end to end on tiny models: the basic and the flexible path give valid shards, a
re-run does nothing, an interrupted stage is completed by running it again (exactly the missing items), and a
process per device or Ray actors write the same items as one worker."""

from __future__ import annotations

import importlib.util
import shutil

import pytest
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.dataset.checks import validate_dataset
from ctxgen.dataset.construct.config import load_config
from ctxgen.dataset.construct.pipeline import run_path, run_stage
from ctxgen.dataset.shards import DatasetReader
from tests.construct_helpers import manifest, statuses, tiny_config


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    root = tmp_path_factory.mktemp("construct")
    config = tiny_config(root)
    res = CliRunner().invoke(app, ["dataset", "construct", "all", "--config", str(config), "--run",
                                   str(root / "run"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    return config, root / "run", res.stdout


def test_basic_path_shards_are_valid(basic):
    config, run, out = basic
    assert "prompts: 3 in, 3 done, 0 skipped, 0 failed; kept 2; rejected: too-few-instances 1" in out
    count, problems = validate_dataset(run / "dataset")
    assert count >= 1 and problems == []
    rec = DatasetReader(run / "dataset").record(0)
    assert rec.subset == "basic" and 2 <= len(rec.instances) <= 5
    inst = rec.instances[0]
    assert inst.enhanced_image is not None and inst.mask is not None and inst.phrase
    assert inst.image.name.endswith(".jpg") and rec.metadata["construct"]["instances"][0]["instruction"]
    res = CliRunner().invoke(app, ["dataset", "validate", str(run / "dataset")])
    assert res.exit_code == 0, res.output


def test_rerun_does_nothing(basic):
    config, run, _ = basic
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file() and p.suffix != ".jsonl"}
    res = CliRunner().invoke(app, ["dataset", "construct", "all", "--config", str(config), "--run", str(run),
                                   "--json"])
    assert res.exit_code == 0, res.output
    lines = [__import__("json").loads(ln) for ln in res.stdout.splitlines()]
    assert all(d["ok"] == 0 and d["failed"] == 0 for d in lines) and lines[-1]["records"] >= 1
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file() and p.suffix != ".jsonl"}
    assert after == before


def test_interrupted_stage_finishes_exactly_the_missing_items(basic, tmp_path):
    config, run, _ = basic
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    originals = {p.parent.name: p.read_bytes() for p in (run / "t2i").glob("*/image.png")}
    shutil.rmtree(copy / "t2i")
    cfg = load_config(config)

    def stop(done, total):
        raise KeyboardInterrupt  # what Ctrl-C does after the first item

    with pytest.raises(KeyboardInterrupt):
        run_stage(cfg, copy, "t2i", device="cpu", progress=stop)
    assert len(list((copy / "t2i").glob("*/item.json"))) == 1
    first = len(manifest(copy, "t2i"))
    run_stage(cfg, copy, "t2i", device="cpu")
    again = statuses(manifest(copy, "t2i")[first:])
    assert sorted(again.values()) == ["ok", "skipped"]
    assert {p.parent.name: p.read_bytes() for p in (copy / "t2i").glob("*/image.png")} == originals
    detect = run_stage(cfg, copy, "detect", device="cpu")  # same bytes, same keys: nothing downstream to redo
    assert detect.counts["skipped"] == 2 and detect.counts["ok"] == 0


def test_a_bad_item_is_logged_and_the_stage_goes_on(basic, tmp_path):
    config, run, _ = basic
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "crop")
    (copy / "t2i/000000/image.png").write_bytes(b"not a png")  # upstream damaged after the fact
    (copy / "t2i/000000/item.json").write_text((run / "t2i/000000/item.json").read_text())
    s = run_stage(load_config(config), copy, "crop")
    assert s.counts["failed"] == 1 and s.counts["ok"] == 1 and "000000" in s.errors[0]
    assert statuses(manifest(copy, "crop")) == {"000000": "failed", "000001": "ok"}


def test_flexible_path(tmp_path):
    cfg = load_config(tiny_config(tmp_path, flexible=True))
    summaries = run_path(cfg, tmp_path / "run", device="cpu")
    assert [s.stage for s in summaries] == ["prompts", "references", "compose", "match"]
    assert all(s.counts["failed"] == 0 for s in summaries)
    count, problems = validate_dataset(tmp_path / "run" / "dataset")
    assert count == summaries[-1].kept >= 1 and problems == []
    rec = DatasetReader(tmp_path / "run" / "dataset").record(0)
    assert rec.subset == "composite" and len(rec.instances) >= 2
    assert rec.metadata["construct"]["bbox"][0]["score"] >= cfg.match.dino
    res = CliRunner().invoke(app, ["dataset", "construct", "report", "--config", str(cfg.source), "--run",
                                   str(tmp_path / "run")])
    assert res.exit_code == 0 and (tmp_path / "run/report/contact-sheet.png").is_file()
    assert "| match | 2 | 2 |" in (tmp_path / "run/report/report.md").read_text()


def _redo(basic, tmp_path, stage):
    config, run, _ = basic
    cfg = load_config(config)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / stage)
    return cfg, run, copy


def _same_items(run, copy, stage):
    for item in (run / stage).glob("*/item.json"):
        assert (copy / stage / item.parent.name / "item.json").read_bytes() == item.read_bytes()


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_process_per_device(basic, tmp_path):
    cfg, run, copy = _redo(basic, tmp_path, "detect")
    s = run_stage(cfg, copy, "detect", devices=("cpu", "cpu"))
    assert s.counts["ok"] == 2 and s.counts["failed"] == 0
    _same_items(run, copy, "detect")


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_actors(basic, tmp_path):
    cfg, run, copy = _redo(basic, tmp_path, "segment")
    s = run_stage(cfg, copy, "segment", devices=("cpu",), backend="ray")
    assert s.counts["ok"] == 2 and statuses(manifest(copy, "segment")) == {"000000": "ok", "000001": "ok"}
    _same_items(run, copy, "segment")
