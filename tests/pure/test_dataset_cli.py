"""`ctxgen dataset ...` end to end through typer's runner: results on stdout, one line per problem on stderr, exit codes."""

from __future__ import annotations

import dataclasses
import json

from PIL import Image
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.dataset.record import ImageData
from ctxgen.dataset.shards import DatasetReader, write_shard
from ctxgen.dataset.synthetic import synthetic_record
from tests.dataset_helpers import mask_png, synthetic_dir, write_fake_imig  # noqa: F401  (fixture)

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["dataset", *[str(a) for a in args]])


def test_schema_prints_the_columns():
    res = invoke("schema")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert [c["name"] for c in doc["columns"]][:4] == ["id", "subset", "prompt", "target"]


def test_make_synthetic_export_and_pack_round_trip(tmp_path):
    res = invoke("make-synthetic", tmp_path / "syn", "--n", 6, "--size", 128)
    assert res.exit_code == 0 and "wrote 6 records from 6 inputs into 1 shards" in res.stdout
    assert invoke("export-scenes", tmp_path / "syn", "--out", tmp_path / "scenes").exit_code == 0
    (tmp_path / "scenes/bad.yaml").write_text("prompt: p\ninstances:\n  - image: x.png\n    box: [1, 2, 3, 4]\n")
    res = invoke("pack", tmp_path / "scenes", "--out", tmp_path / "packed", "--per-shard", 4)
    assert res.exit_code == 1, res.output
    assert "packed 6 records from 7 inputs into 2 shards" in res.stdout
    assert f"{tmp_path / 'scenes/bad.yaml'}:1:1 target: required key is missing" in res.stderr
    assert f"{tmp_path / 'scenes/bad.yaml'}:3:12 instances[0].image: image file not found" in res.stderr
    assert [DatasetReader(tmp_path / "packed").record(i) for i in range(6)] == [synthetic_record(i, size=128)
                                                                             for i in range(6)]
    log = [json.loads(line) for line in (tmp_path / "packed/skipped.jsonl").read_text().splitlines()]
    assert [e["reason"] for e in log] == ["invalid-scene"]
    res = invoke("pack", tmp_path / "scenes", "--out", tmp_path / "packed", "--per-shard", 4)
    assert "up to date: 6 records in 2 shards" in res.stdout


def test_pack_on_several_machines_then_publish(tmp_path):
    assert invoke("make-synthetic", tmp_path / "scenes", "--n", 5, "--size", 128, "--layout", "scenes").exit_code == 0
    args = ("pack", tmp_path / "scenes", "--out", tmp_path / "out", "--per-shard", 2)
    res = invoke(*args, "--shard", "1/2")
    assert res.exit_code == 0 and "run the same command without --shard" in res.stdout
    assert not list((tmp_path / "out").glob("*.parquet"))
    res = invoke(*args, "--json")
    doc = json.loads(res.stdout)
    assert doc["records"] == 5 and len(doc["shards"]) == 3 and doc["finished"]
    assert invoke(*args, "--shard", "2/2").exit_code == 2


def test_import_imig_reports_skips_and_writes_the_log(tmp_path):
    tree = write_fake_imig(tmp_path / "imig")
    (tree / "imig-basic/masked_instance_data/000003_2_mask.png").write_bytes(mask_png(170, 110, empty=True))
    res = invoke("import-imig", tree, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "imported 2 records from 3 inputs into 1 shards" in res.stdout
    assert "skipped 1 records, 1 instances (empty-mask 1, no-instances 1)" in res.stderr
    log = [json.loads(line) for line in (tmp_path / "out/skipped.jsonl").read_text().splitlines()]
    assert [(e["level"], e["reason"]) for e in log] == [("skip-instance", "empty-mask"), ("skip-record", "no-instances")]
    assert invoke("import-imig", tree, "--out", tmp_path / "x", "--subset", "nope").exit_code == 2
    res = invoke("import-imig", tmp_path / "nothing", "--out", tmp_path / "y")
    assert res.exit_code == 1 and "no such folder" in res.stderr


def test_validate_reports_every_problem_with_shard_and_row(synthetic_dir, tmp_path):
    res = invoke("validate", synthetic_dir)
    assert res.exit_code == 0 and "ok" in res.stdout and "12 records, 0 problems" in res.stdout
    good = synthetic_record(1)
    inst = good.instances[1]
    bad_inst = dataclasses.replace(inst, box=(0.0, 0.0, 999.0, 50.0), mask=ImageData(mask_png(8, 8), "m.png"))
    bad = dataclasses.replace(good, instances=(good.instances[0], bad_inst))
    write_shard(tmp_path / "d/train-00000-of-00002.parquet", [good, bad])
    whole = (synthetic_dir / "train-00000-of-00003.parquet").read_bytes()
    (tmp_path / "d/train-00001-of-00002.parquet").write_bytes(whole[:1000])
    res = invoke("validate", tmp_path / "d", "--json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    got = [(p["shard"], p["row"], p["field"], p["reason"]) for p in doc["problems"]]
    assert got == [("train-00000-of-00002.parquet", 1, "id", "duplicate-id"),
                   ("train-00000-of-00002.parquet", 1, "instances[1].mask", "mask-size"),
                   ("train-00000-of-00002.parquet", 1, "instances[1].box", "box-outside"),
                   ("train-00001-of-00002.parquet", None, "file", "unreadable")]
    assert "train-00000-of-00002.parquet:1 synthetic-000001 instances[1].box: [0, 0, 999, 50] is not inside" in res.stderr
    assert invoke("validate", tmp_path / "d", "--canvas", "100x100").exit_code == 2


def test_preview_and_stats_write_pictures(synthetic_dir, tmp_path):
    res = invoke("preview", synthetic_dir, "--id", "synthetic-000004", "--out", tmp_path / "p.png", "--text-len", 32)
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "p.png") as im:
        assert im.width == 1280 and im.height > 1000
    assert invoke("preview", synthetic_dir).exit_code == 2
    res = invoke("preview", synthetic_dir, "--id", "nope")
    assert res.exit_code == 1 and "no record with id 'nope'" in res.stderr
    res = invoke("stats", synthetic_dir, "--plot", tmp_path / "s.png")
    assert res.exit_code == 0 and "instances/record" in res.stdout and (tmp_path / "s.png").is_file()
    doc = json.loads(invoke("stats", synthetic_dir, "--plot", tmp_path / "s.png", "--json").stdout)
    assert doc["records"] == 12 and doc["subsets"] == {"basic": 6, "composite": 6}
    assert sum(doc["box_size"].values()) == sum(int(k) * v for k, v in doc["instances_per_record"].items())
