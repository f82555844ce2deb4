"""DPO on the tiny model (T4, R23): step-0 loss ln 2, the reference is base + SFT fused, the implicit accuracy
rises on a fixed pair, and the adapter file is SFT + DPO as one LoRA that `render` loads."""

from __future__ import annotations

import math

import pytest
import torch
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.models.adapter import ADAPTER_NAME
from ctxgen.models.loading import load_model
from ctxgen.models.registry import ModelSpec
from ctxgen.sampling.loop import make_model_fn
from ctxgen.sampling.processors import install_processors
from ctxgen.sequence.masks import block_schedule
from ctxgen.train import lora
from ctxgen.train.examples import build_example
from ctxgen.train.loop import Trainer, train
from ctxgen.train.losses import dpo_loss, noisy, velocity_target
from ctxgen.train.randomness import Choices
from ctxgen.train.step import adapters_disabled, dpo_step, encode
from tests.train_helpers import ROOT, adapter_tensors, make_data, one_thread, open_tiny  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pair_root(tmp_path_factory, one_thread):
    """One record (a fixed pair: its target and its layout) and a 2-step SFT run on it."""
    root = tmp_path_factory.mktemp("dpo")
    make_data(root, n=1)
    train(open_tiny(root, "sft", train={"max_steps": 2}))
    return root


def dpo_session(root, name, **sections):
    return open_tiny(root, name, "dpo", model={"init_adapter": "sft/adapter"}, **sections)


def fixed_example(s):
    rec = s.source.reader.record(0)
    return build_example(rec, Choices(False, ("plain",) * len(rec.instances), 0), s.options)


def implicit(s, enc, beta: float, probes: int = 8) -> tuple[float, float]:
    """(implicit accuracy, mean logit) over fixed (noise, t) probes of the pair."""
    inside = []
    for i in range(probes):
        x1 = torch.randn(enc.x0.shape, generator=torch.Generator().manual_seed(i))
        x0, x1, t = torch.cat([enc.x0, enc.rejected]), torch.cat([x1, x1]), torch.tensor([0.2 + 0.08 * i])
        xt = noisy(x0, x1, t)
        with torch.no_grad():
            v = enc.call(xt, t)
            with adapters_disabled(s.run.model.transformer):
                v_ref = enc.reference(xt, t)
        inside.append(float(dpo_loss(v, v_ref, velocity_target(x0, x1), beta).inside[0]))
    return sum(x > 0 for x in inside) / probes, sum(inside) / probes


def test_step0_loss_is_ln2_and_reference_is_base_plus_sft(pair_root):
    s = dpo_session(pair_root, "step0")
    assert s.run.model.fused and s.cfg.rank == 256 and s.run.init_parts  # SFT fused; a fresh rank-256 policy
    enc = encode(s.run, fixed_example(s), s.text, "sdpa", "layout")
    assert torch.equal(enc.rejected, enc.inputs[0][:, : enc.x0.shape[1]].float())  # rejected = the layout tokens
    for index in range(3):
        loss, info = dpo_step(s.run, enc, step=0, index=index)
        assert float(loss.detach()) == pytest.approx(math.log(2), abs=1e-7) and info["accuracy"] == 0.0
    sft = load_model(ModelSpec("t", "tiny", str(pair_root / "sft" / "adapter")), "cpu", "float32", fuse=True)
    install_processors(sft.transformer, block_schedule(sft.n_double, sft.n_single))
    fn = make_model_fn(sft.transformer, *enc.inputs)
    x = torch.randn(enc.x0.shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad(), adapters_disabled(s.run.model.transformer):
        ref = enc.reference(x, torch.tensor([0.5]))
    assert torch.allclose(ref, fn(x, torch.tensor(0.5)), atol=1e-5)


def test_implicit_accuracy_rises_on_a_fixed_pair(pair_root):
    s = dpo_session(pair_root, "fixed", dpo={"rank": 4}, train={"max_steps": 20}, checkpoint={"every": 1000})
    enc = encode(s.run, fixed_example(s), s.text, "sdpa", "layout")
    acc0, logit0 = implicit(s, enc, s.cfg.doc.dpo.beta)
    assert acc0 == 0.0 and logit0 == 0.0
    trainer = Trainer(s)
    while trainer.step < 20:
        trainer.train_step()
    trainer.prefetch.close()
    acc, logit = implicit(s, enc, s.cfg.doc.dpo.beta)
    assert acc >= 0.75 and logit > 0.1


def test_dpo_adapter_is_sft_plus_dpo_and_renders(pair_root, tmp_path):
    s = dpo_session(pair_root, "run", dpo={"rank": 4}, train={"max_steps": 2})
    summary = train(s)
    loaded = load_model(ModelSpec("t", "tiny", str(pair_root / "sft" / "adapter")), "cpu", "float32", fuse=False)
    sft = lora.collect(loaded.transformer, ADAPTER_NAME)
    policy = lora.policy_parts(s.run.model.transformer)
    saved = adapter_tensors(summary.adapter)
    for name in ("x_embedder", "single_transformer_blocks.3.proj_out"):
        a, b = saved[f"transformer.{name}.lora_A.weight"], saved[f"transformer.{name}.lora_B.weight"]
        assert a.shape[0] == 4 + 4  # rank r_sft + r_dpo
        want = sft[name].scale * sft[name].b @ sft[name].a + policy[name].scale * policy[name].b @ policy[name].a
        assert torch.allclose(b @ a, want, atol=1e-6)
    res = CliRunner().invoke(app, ["render", str(ROOT / "examples" / "small.yaml"), "--model", "tiny", "--adapter",
                                   str(summary.run_dir / "adapter"), "--device", "cpu", "--steps", "2",
                                   "--text-len", "16", "--seed", "1", "--out", str(tmp_path), "--no-overlays"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "small" / "seed-1.png").is_file()
