"""Shards and the reader: deterministic bytes, random access, seeded resumable streams, rank sharding, bad files,
interrupted builds that resume without duplicates, and the same bytes from worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxgen.core.errors import UsageError, UserError
from ctxgen.dataset import build as build_mod
from ctxgen.dataset.build import build, plan_jobs
from ctxgen.dataset.shards import Cursor, DatasetReader
from ctxgen.dataset.synthetic import make_synthetic, synthetic_items, synthetic_record
from tests.dataset_helpers import synthetic_dir  # noqa: F401  (fixture)


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet"))}


def test_layout_names_and_manifest(synthetic_dir):
    names = sorted(p.name for p in synthetic_dir.glob("*.parquet"))
    assert names == [f"train-0000{k}-of-00003.parquet" for k in range(3)]
    doc = json.loads((synthetic_dir / "dataset.json").read_text())
    assert doc["records"] == 12 and [s["records"] for s in doc["shards"]] == [5, 5, 2]
    assert doc["subsets"] == {"basic": 6, "composite": 6} and doc["schema_version"] == 1
    assert not (synthetic_dir / ".staging").exists()


def test_same_seed_same_bytes(synthetic_dir, tmp_path):
    make_synthetic(tmp_path / "again", 12, per_shard=5)
    assert shard_bytes(tmp_path / "again") == shard_bytes(synthetic_dir)
    make_synthetic(tmp_path / "other", 12, seed=1, per_shard=5)
    assert shard_bytes(tmp_path / "other") != shard_bytes(synthetic_dir)


def test_random_access_ids_and_locations(synthetic_dir):
    reader = DatasetReader(synthetic_dir)
    assert len(reader) == 12
    assert reader.ids() == [f"synthetic-{i:06d}" for i in range(12)]
    assert [reader.record(i) for i in (0, 6, 11)] == [synthetic_record(i) for i in (0, 6, 11)]
    assert str(reader.location(6)) == "train-00001-of-00003.parquet:1"
    assert reader.index_of("synthetic-000007") == 7
    with pytest.raises(UserError, match="no record with id 'nope'"):
        reader.index_of("nope")


def take(stream, n):
    return [next(stream) for _ in range(n)]


def test_every_epoch_is_a_permutation_fixed_by_seed_and_epoch(synthetic_dir):
    reader = DatasetReader(synthetic_dir)
    got = [rec.id for _, rec in take(reader.stream(seed=3), 36)]
    epochs = [got[0:12], got[12:24], got[24:36]]
    assert all(sorted(e) == sorted(reader.ids()) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    again = [rec.id for _, rec in take(DatasetReader(synthetic_dir).stream(seed=3), 36)]
    assert again == got
    assert [rec.id for _, rec in take(reader.stream(seed=4), 12)] != epochs[0]
    assert list(reader.epoch_order(3, 1)) == [reader.ids().index(i) for i in epochs[1]]


def test_a_cursor_resumes_exactly_where_the_stream_stood(synthetic_dir):
    reader = DatasetReader(synthetic_dir)
    run = take(reader.stream(seed=9), 30)
    for stop in (0, 5, 11, 12, 20):
        cursor = Cursor.from_json(run[stop][0].to_json())  # saved with a checkpoint, restored after a restart
        resumed = take(DatasetReader(synthetic_dir).stream(seed=9, cursor=cursor), 30 - stop - 1)
        assert [r.id for _, r in resumed] == [r.id for _, r in run[stop + 1:]]
    assert run[11][0] == Cursor(1, 0) and run[12][0] == Cursor(1, 1)


def test_ranks_split_each_epoch_and_resume_on_their_own(synthetic_dir):
    reader = DatasetReader(synthetic_dir)
    full = [r.id for _, r in take(reader.stream(seed=1), 12)]
    parts = [[r.id for _, r in take(reader.stream(seed=1, rank=k, world=3), 4)] for k in range(3)]
    assert parts == [full[k::3] for k in range(3)]
    two = take(reader.stream(seed=1, rank=1, world=3), 6)
    resumed = take(reader.stream(seed=1, cursor=two[2][0], rank=1, world=3), 3)
    assert [r.id for _, r in resumed] == [r.id for _, r in two[3:]]


def test_bad_stream_arguments_and_cursors(synthetic_dir):
    reader = DatasetReader(synthetic_dir)
    with pytest.raises(UsageError, match="rank 3 of world 3"):
        next(reader.stream(0, rank=3, world=3))
    with pytest.raises(UserError, match="would get no record: the dataset holds 12"):
        next(reader.stream(0, rank=12, world=16))
    with pytest.raises(UserError, match="past the dataset's 12 records"):
        next(reader.stream(0, cursor=Cursor(0, 99)))
    with pytest.raises(UsageError, match="expected"):
        Cursor.from_json("[1, 2]")
    with pytest.raises(UsageError, match="integers >= 0"):
        Cursor.from_json('{"epoch": -1, "position": 0}')


def test_datasets_streams_the_shards(synthetic_dir):
    datasets = pytest.importorskip("datasets")
    files = sorted(str(p) for p in synthetic_dir.glob("*.parquet"))
    stream = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True)
    rows = list(stream)
    assert [r["id"] for r in rows] == [f"synthetic-{i:06d}" for i in range(12)]
    first, rec = rows[0], synthetic_record(0)
    assert first["target"].size == rec.target.size() and first["target"].format == "JPEG"
    inst = first["instances"][1]
    assert inst["mask"].size == rec.instances[1].mask.size() and inst["box"] == list(rec.instances[1].box)
    assert first["instances"][0]["mask"] is None and first["instances"][0]["image"].mode == "RGBA"
    assert json.loads(first["metadata"]) == rec.metadata and first["schema_version"] == 1


def test_truncated_and_foreign_shards_are_one_line_errors(synthetic_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    whole = (synthetic_dir / "train-00000-of-00003.parquet").read_bytes()
    (bad / "train-00000-of-00001.parquet").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match="not a readable Parquet file .*truncated or corrupt"):
        DatasetReader(bad)
    import pyarrow as pa
    import pyarrow.parquet as pq

    (bad / "train-00000-of-00001.parquet").unlink()
    table = pq.read_table(synthetic_dir / "train-00000-of-00003.parquet")
    meta = {**table.schema.metadata, b"ctxgen": json.dumps({"format": "ctxgen-dataset", "schema_version": 2})}
    pq.write_table(table.replace_schema_metadata(meta), bad / "v2.parquet")
    with pytest.raises(UserError, match="schema version 2, but this ctxgen reads version 1"):
        DatasetReader(bad)
    pq.write_table(pa.table({"x": [1]}), bad / "v2.parquet")
    with pytest.raises(UserError, match="not a ctxgen dataset shard"):
        DatasetReader(bad)
    with pytest.raises(UserError, match="holds no .parquet shards"):
        DatasetReader(tmp_path)


def test_an_interrupted_build_resumes_without_duplicates(tmp_path, monkeypatch):
    jobs = plan_jobs(synthetic_items, list(range(10)), {"seed": 0, "size": 128, "subsets": ["basic"]}, 3)
    real = build_mod.write_shard
    calls = []

    def crash_on_third(path, records, meta=None):
        calls.append(path.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, records, meta)

    monkeypatch.setattr(build_mod, "write_shard", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path / "out", jobs)
    staging = tmp_path / "out" / ".staging"
    assert sorted(p.name for p in staging.glob("*.parquet")) == ["chunk-00000.parquet", "chunk-00001.parquet"]
    assert not list((tmp_path / "out").glob("*.parquet")) and not list(staging.glob(".*part"))
    monkeypatch.setattr(build_mod, "write_shard", real)
    summary = build(tmp_path / "out", jobs)
    assert summary.reused_chunks == 2 and summary.records == 10
    reader = DatasetReader(tmp_path / "out")
    assert reader.ids() == [f"synthetic-{i:06d}" for i in range(10)]
    assert build(tmp_path / "out", jobs).up_to_date
    other = plan_jobs(synthetic_items, list(range(4)), {"seed": 1, "size": 128, "subsets": ["basic"]}, 3)
    with pytest.raises(UserError, match="already holds a dataset made from other inputs"):
        build(tmp_path / "out", other)
    assert build(tmp_path / "out", other, force=True).records == 4
    assert len(DatasetReader(tmp_path / "out")) == 4


def test_worker_processes_write_the_same_bytes(tmp_path):
    make_synthetic(tmp_path / "one", 8, size=128, per_shard=3)
    make_synthetic(tmp_path / "two", 8, size=128, per_shard=3, workers=2)
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "two")
    assert len(shard_bytes(tmp_path / "two")) == 3
