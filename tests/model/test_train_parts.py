"""Training parts with hand values: the T2/T4 losses, keyed noise, the learning-rate schedule, optimizer state
through safetensors + JSON, checkpoint pruning and damage, and the `--dry-run` report."""

from __future__ import annotations

import importlib.util
import json
import math
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.core.errors import UserError
from ctxgen.train import checkpoint as ckpt
from ctxgen.train.losses import dpo_loss, noisy, sft_loss, velocity_target
from ctxgen.train.optim import build_optimizer, load_optimizer_state, lr_at, optimizer_state
from ctxgen.train.randomness import keyed_seed
from ctxgen.train.step import noise_and_t
from tests.train_helpers import one_thread, train_root, write_config  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_losses_by_hand():
    x0, x1 = torch.zeros(1, 2, 1), torch.ones(1, 2, 1)
    t = torch.tensor([0.25])
    assert torch.equal(noisy(x0, x1, t), torch.full((1, 2, 1), 0.25))
    u = velocity_target(x0, x1)
    assert float(sft_loss(torch.full((1, 2, 1), 3.0), u)) == 4.0  # mean((3 - 1)^2)
    v = torch.stack([torch.full((2, 1), 1.0), torch.full((2, 1), 3.0)])  # (2, M, 1): preferred exact, rejected off
    u2 = torch.ones(2, 2, 1)
    terms = dpo_loss(v, torch.full((2, 2, 1), 2.0), u2, beta=0.5)  # reference off by 1 on both sides
    inside = -0.25 * ((0.0 - 4.0) - (1.0 - 1.0))  # −β/2·((E_w − E_l) − (E_ref,w − E_ref,l)) = 1
    assert float(terms.inside[0]) == inside and float(terms.loss) == pytest.approx(-math.log(1 / (1 + math.exp(-1))))
    assert float(terms.accuracy) == 1.0
    same = dpo_loss(v, v, u2, beta=1250.0)
    assert float(same.loss) == pytest.approx(math.log(2)) and float(same.accuracy) == 0.0


def test_noise_is_keyed_t_drawn_first():
    t, x1 = noise_and_t(0, 3, 1, (1, 4, 64))
    t2, x2 = noise_and_t(0, 3, 1, (1, 4, 64))
    assert torch.equal(t, t2) and torch.equal(x1, x2) and x1.dtype == torch.float32
    gen = torch.Generator().manual_seed(keyed_seed(0, 2, 3, 1))
    assert torch.equal(t, torch.sigmoid(torch.randn(1, generator=gen)))  # t first ...
    assert torch.equal(x1, torch.randn(1, 4, 64, generator=gen))  # ... then x1 in the packed shape
    assert not torch.equal(noise_and_t(0, 3, 2, (1, 4, 64))[1], x1)


def test_learning_rate_schedules():
    opt = SimpleNamespace(lr=1.0, warmup_steps=4, schedule="constant")
    assert [lr_at(s, opt, 10) for s in (0, 3, 4, 9)] == [0.25, 1.0, 1.0, 1.0]
    opt.schedule = "linear"
    assert lr_at(4, opt, 10) == 1.0 and lr_at(7, opt, 10) == 0.5
    opt.schedule, opt.warmup_steps = "cosine", 0
    assert lr_at(0, opt, 10) == 1.0 and lr_at(5, opt, 10) == pytest.approx(0.5) and lr_at(10, opt, 10) == 0.0


@pytest.mark.parametrize("name", ["adamw", "prodigy"])
def test_optimizer_state_round_trip_is_exact(name):
    if name == "prodigy" and importlib.util.find_spec("prodigyopt") is None:
        pytest.skip("prodigyopt (the optional `train` extra) is not installed")
    doc = SimpleNamespace(name=name, lr=1.0 if name == "prodigy" else 1e-3, betas=[0.9, 0.999], eps=1e-8,
                          weight_decay=0.01, prodigy=SimpleNamespace(use_bias_correction=True, safeguard_warmup=True,
                                                                     d_coef=1.0))

    def run(steps, state=None, start=0):
        torch.manual_seed(0)
        w = torch.nn.Parameter(torch.randn(5, 3))
        opt = build_optimizer([w], doc, torch.device("cpu"))
        if state is not None:
            w.data.copy_(state[0])
            load_optimizer_state(opt, state[1], json.loads(json.dumps(state[2])))
        for i in range(start, start + steps):
            w.grad = torch.sin(w.detach() * (i + 1))
            opt.step()
        return w, opt

    straight, _ = run(4)
    half, opt = run(2)
    tensors, scalars = optimizer_state(opt)
    resumed, _ = run(2, (half.detach().clone(), tensors, scalars), start=2)
    assert torch.equal(straight, resumed)


def test_checkpoints_keep_the_last_k_and_refuse_damage(tmp_path):
    params = {"w": torch.ones(2)}
    for step in (2, 4, 6):
        (tmp_path / "adapter").mkdir(exist_ok=True)
        (tmp_path / "adapter" / f"contextgen_sft_{step}.safetensors").write_bytes(b"x")
        ckpt.save(tmp_path, step, params, {"m": torch.zeros(1)}, {"method": "sft"}, keep=2)
    assert ckpt.complete_steps(tmp_path) == [4, 6]
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == ["contextgen_sft_4.safetensors",
                                                                      "contextgen_sft_6.safetensors"]
    (tmp_path / "checkpoints" / "step-00000008").mkdir()  # a save killed before state.json
    assert ckpt.find(tmp_path, "auto") == ckpt.step_dir(tmp_path, 6)
    point = ckpt.load(ckpt.step_dir(tmp_path, 6))
    assert point.step == 6 and torch.equal(point.params["w"], params["w"])
    (ckpt.step_dir(tmp_path, 6) / "optimizer.safetensors").write_bytes(b"damaged")
    with pytest.raises(UserError, match="damaged"):
        ckpt.load(ckpt.step_dir(tmp_path, 6))
    with pytest.raises(UserError, match="not a finished checkpoint"):
        ckpt.find(tmp_path, str(tmp_path / "checkpoints" / "step-00000008"))


def test_dry_run_counts_estimates_and_writes_nothing(train_root):
    out = train_root / "dry"
    cfg = write_config(train_root, "dry.yaml", output="dry", data={"mix": {"basic": 15, "composite": 1}})
    res = CliRunner().invoke(app, ["train", "sft", str(cfg), "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["data"]["records"] == 6 and report["data"]["subsets"] == {"basic": 3, "composite": 3}
    assert report["data"]["checked_examples"] == 2 and report["trainable_parameters"] == 16256
    parts = report["memory"]["parts"]
    assert parts["LoRA weights (float32)"] == 16256 * 4 and parts["optimizer state (adamw)"] == 16256 * 8
    assert report["memory"]["peak_bytes"] == sum(parts.values()) and not out.exists()


def test_gpu_training_benchmark_runs_at_toy_size_on_cpu():
    """benchmarks/gpu_bench_train.py --tiny: the full-size training step's code path, on CPU."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_bench_train.py"
    spec = importlib.util.spec_from_file_location("gpu_bench_train", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_bench_train"] = module
    spec.loader.exec_module(module)
    result = module.run_train_bench(torch.device("cpu"), tiny=True, rank=4, dpo_rank=4, steps=2)
    assert [r["method"] for r in result["rows"]] == ["sft", "dpo"]
    assert all("error" not in r and r["step_s"] > 0 and math.isfinite(r["loss"]) for r in result["rows"])
    assert "| sft | 4 |" in module.markdown(result)
