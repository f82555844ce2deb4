"""Training configs: the shipped examples load; bad configs give every problem at once, one located line each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from ctxgen.train.config import ConfigError, load_config
from ctxgen.train.config_schema import config_json_schema
from tests.train_helpers import TINY, make_data, train_root, write_config  # noqa: F401  (fixture)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "train"


def issues(path: Path, method: str = "sft") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, method)
    return info.value.issues


def test_tiny_config_loads_with_published_defaults(train_root):
    cfg = load_config(write_config(train_root), "sft")
    doc = cfg.doc
    assert cfg.base == "tiny" and cfg.shards == train_root / "data" and cfg.rank == 4 and cfg.alpha == 4.0
    assert (doc.train.grad_clip, doc.train.guidance, doc.dpo.beta, doc.dpo.rank) == (0.5, 1.0, 1250.0, 256)
    assert (doc.data.caption_dropout, doc.data.enhanced_p, doc.data.face_p, doc.data.box_scale) == (0.2, 0.5, 0.75,
                                                                                                    "height")
    assert doc.optimizer.name == "adamw" and doc.optimizer.weight_decay == 0.01
    default = load_config(write_config(train_root, "d.yaml", lora=None, data={"canvas": None}), "sft")
    assert default.rank == 512 and default.doc.data.canvas == [768, 768]  # T1 / T2 published values


def test_many_problems_at_once_with_line_and_column(train_root):
    text = ("model:\n  base: tiny\n  quantise: nf4\ndata:\n  shards: nowhere\n  canvas: [100, 128]\n"
            "lora:\n  rank: 0\noptimizer:\n  name: adam\ntrain: {batch: 0}\n")
    path = train_root / "bad.yaml"
    path.write_text(text)
    got = issues(path)
    assert got == [
        f"{path}:3:3 model.quantise: unknown key 'quantise'; did you mean 'quantize'? allowed keys: base, "
        "init_adapter, quantize",
        f"{path}:5:11 data.shards: {train_root / 'nowhere'}: no such dataset folder; give the folder "
        "`ctxgen dataset pack` wrote",
        f"{path}:6:11 data.canvas: width 100 is not a multiple of 16 within 64..2048",
        f"{path}:8:9 lora.rank: Input should be greater than 0; got 0",
        f"{path}:10:9 optimizer.name: Input should be 'adamw', 'adamw8bit' or 'prodigy'; got 'adam'",
        f"{path}:11:16 train.batch: Input should be greater than 0; got 0",
    ]
    assert all("\n" not in line for line in got)


def test_dpo_needs_an_initial_adapter_sft_does_not(train_root):
    path = write_config(train_root, "dpo.yaml")
    load_config(path, "sft")
    (line,) = issues(path, "dpo")
    assert line.startswith(f"{path}:3:3 model.init_adapter: required for `ctxgen train dpo`")
    missing = write_config(train_root, "dpo2.yaml", model={"init_adapter": "nope/adapter.safetensors"})
    (line,) = issues(missing, "dpo")
    assert "model.init_adapter: not found" in line


def test_base_that_is_not_kontext_shaped(train_root):
    base = train_root / "not-kontext"
    for sub, cfg in (("transformer", {"_class_name": "SD3Transformer2DModel", "in_channels": 16}),
                     ("vae", {"_class_name": "AutoencoderKL", "latent_channels": 16})):
        (base / sub).mkdir(parents=True, exist_ok=True)
        (base / sub / "config.json").write_text(json.dumps(cfg))
        (base / sub / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    for sub in ("text_encoder", "text_encoder_2"):
        (base / sub).mkdir(exist_ok=True)
        (base / sub / "config.json").write_text("{}")
        (base / sub / "model.safetensors").write_bytes(b"")
    for sub in ("tokenizer", "tokenizer_2"):
        (base / sub).mkdir(exist_ok=True)
        (base / sub / "tokenizer.json").write_text("{}")
    (base / "scheduler").mkdir(exist_ok=True)
    (base / "scheduler" / "scheduler_config.json").write_text("{}")
    index = {n: ["diffusers", "X"] for n in ("scheduler", "vae", "text_encoder", "tokenizer", "text_encoder_2",
                                            "tokenizer_2", "transformer")}
    (base / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusion3Pipeline", **index}))
    (line,) = issues(write_config(train_root, "nk.yaml", model={"base": "not-kontext"}))
    assert "model.base: base folder" in line and "not FLUX.1-Kontext-shaped" in line
    assert "transformer class is 'SD3Transformer2DModel'" in line and "in_channels is 16 (need 64)" in line


def test_unknown_top_level_key_and_bad_preview_scene(train_root):
    path = write_config(train_root, "p.yaml", preview={"scenes": ["gone.yaml"]}, schedule="cosine")
    got = issues(path)
    assert any("schedule: unknown key 'schedule'" in g for g in got)
    assert any("preview.scenes[0]: scene file not found" in g and "relative to the config file" in g for g in got)


def test_cpu_only_options_refused_on_cpu(train_root):
    path = write_config(train_root, "q.yaml", model={"quantize": "nf4"}, optimizer={"name": "adamw8bit"})
    got = issues(path)
    assert any("model.quantize: nf4 needs a CUDA GPU" in g for g in got)
    assert any("optimizer.name: adamw8bit needs a CUDA GPU" in g for g in got)


def test_not_a_mapping_and_missing_data(train_root):
    empty = train_root / "empty.yaml"
    empty.write_text("")
    assert "a training config is a mapping" in issues(empty)[0]
    nodata = train_root / "nodata.yaml"
    nodata.write_text("seed: 1\n")
    assert issues(nodata) == [f"{nodata}:1:1 data: required key is missing"]


def test_trajectory_ignores_cadence_and_output(train_root):
    a = load_config(write_config(train_root, "a.yaml"), "sft")
    b = load_config(write_config(train_root, "b.yaml", checkpoint={"every": 7}, output="elsewhere",
                                 train={"max_steps": 99}), "sft")
    c = load_config(write_config(train_root, "c.yaml", optimizer={"lr": 2.0e-3}), "sft")
    assert a.trajectory() == b.trajectory() and a.trajectory() != c.trajectory()


def test_schema_is_json_and_forbids_extra_keys():
    schema = config_json_schema()
    json.dumps(schema)
    assert schema["additionalProperties"] is False and "data" in schema["required"]
    assert schema["$defs"]["LoraDoc"]["properties"]["rank"]["default"] == 512


def test_shipped_examples_are_valid(tmp_path):
    """examples/train/*.yaml load once their data (and, for DPO, the SFT adapter) exist."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES, root / "examples" / "train")
    shutil.copy(EXAMPLES.parent / "small.yaml", root / "examples" / "small.yaml")
    shutil.copytree(EXAMPLES.parent / "refs", root / "examples" / "refs")
    make_data(root / "data", n=2)
    (root / "data" / "data").rename(root / "data" / "synth")
    sft = load_config(root / "examples" / "train" / "sft-tiny.yaml", "sft")
    assert sft.base == "tiny" and sft.output == root / "runs" / "sft-tiny" and len(sft.preview_scenes) == 1
    doc = yaml.safe_load((EXAMPLES / "dpo-tiny.yaml").read_text())
    adapter = root / "runs" / "sft-tiny" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "contextgen_sft_1.safetensors").write_bytes(b"")
    dpo = load_config(root / "examples" / "train" / "dpo-tiny.yaml", "dpo")
    assert dpo.init_adapter == str(adapter) and dpo.rank == doc["dpo"]["rank"]
    assert TINY["model"]["base"] == "tiny"
