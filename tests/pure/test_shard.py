"""--shard i/N: N shards partition the scenes, each about 1/N, the same on every machine; --devices parsing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxgen.batch.plan import parse_shard, select_shard
from ctxgen.core.errors import UserError
from ctxgen.outputs.files import scene_out_dirs
from ctxgen.batch.devices import parse_devices

names = st.lists(st.text("abcdefgh/_", min_size=1, max_size=12), min_size=0, max_size=40, unique=True)


@settings(max_examples=60, deadline=None)
@given(names=names, n=st.integers(1, 9))
def test_shards_partition_the_scenes_evenly(names, n):
    paths = [Path("/scenes") / f"{name}.yaml" for name in names]
    shards = [select_shard(paths, f"{i}/{n}") for i in range(n)]
    flat = [p for shard in shards for p in shard]
    assert sorted(flat) == sorted(paths)  # every scene exactly once
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # sizes differ by at most one
    for shard in shards:  # each shard keeps the input order
        assert shard == [p for p in paths if p in set(shard)]


def test_shard_does_not_depend_on_the_listing_order():
    paths = [Path(f"/data/scene_{k:03d}.yaml") for k in range(50)]
    shuffled = paths[:]
    random.Random(1).shuffle(shuffled)
    for i in range(4):
        assert set(select_shard(paths, f"{i}/4")) == set(select_shard(shuffled, f"{i}/4"))


def test_relative_and_absolute_spellings_land_in_the_same_shard(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rel = [Path(f"s{k}.yaml") for k in range(20)]
    absolute = [tmp_path / p for p in rel]
    for i in range(3):
        assert [tmp_path / p for p in select_shard(rel, f"{i}/3")] == select_shard(absolute, f"{i}/3")


def test_output_folders_are_named_over_all_scenes_so_shards_never_collide():
    paths = [Path("/a/park.yaml"), Path("/b/park.yaml"), Path("/c/zoo.yaml")]
    dirs = scene_out_dirs(paths, Path("out"))
    assert len(set(dirs.values())) == 3
    assert dirs[Path("/a/park.yaml")] != dirs[Path("/b/park.yaml")]


@pytest.mark.parametrize("spec", ["1", "a/b", "2/2", "-1/3", "0/0", "1/2/3", ""])
def test_bad_shard_specs_are_user_errors(spec):
    with pytest.raises(UserError, match="--shard"):
        parse_shard(spec)


@pytest.mark.parametrize(
    ("spec", "devices"),
    [
        ("cpu:2", ("cpu", "cpu")),
        ("cpu,cpu,cpu", ("cpu",) * 3),
        ("0,1", ("cuda:0", "cuda:1")),
        (" cuda:1 , 3 ", ("cuda:1", "cuda:3")),
        ("cuda", ("cuda:0",)),
        ("mps", ("mps",)),
    ],
)
def test_parse_devices(spec, devices):
    assert parse_devices(spec) == devices


def test_devices_all_counts_the_gpus(monkeypatch):
    monkeypatch.setattr("ctxgen.batch.devices._cuda_count", lambda: 2)
    assert parse_devices("all") == ("cuda:0", "cuda:1")
    monkeypatch.setattr("ctxgen.batch.devices._cuda_count", lambda: 0)
    with pytest.raises(UserError, match="no CUDA GPU"):
        parse_devices("all")
    assert parse_devices("all", for_ray=True) == ("all",)  # counted in the Ray cluster instead


@pytest.mark.parametrize("spec", ["", "gpu", "cpu:0", "cpu:x", "0,,1", "cuda:a", "tpu:1"])
def test_bad_devices_are_user_errors(spec):
    with pytest.raises(UserError, match="--devices"):
        parse_devices(spec)


def test_ray_devices_are_all_gpu_or_all_cpu():
    with pytest.raises(UserError, match="not both"):
        parse_devices("cpu,0", for_ray=True)
