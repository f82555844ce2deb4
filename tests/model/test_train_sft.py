"""SFT on the tiny model (CPU, float32): train/infer parity, only the LoRA trains, overfitting, bit-identical resume,
and the adapter file through `ctxgen render` (T1-T3, R22)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.sampling.loop import make_model_fn
from ctxgen.sampling.renderer import Renderer
from ctxgen.scene.model import load_scene
from ctxgen.sequence.prepare import prepare_scene
from ctxgen.train import lora
from ctxgen.train.examples import build_example
from ctxgen.train.loop import Trainer, train
from ctxgen.train.losses import noisy, sft_loss, velocity_target
from ctxgen.train.randomness import Choices, draw_choices
from ctxgen.train.step import encode
from tests.train_helpers import ROOT, adapter_tensors, make_data, one_thread, open_tiny, train_root  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ROOT / "examples" / "small.yaml"


def example(s, n: int = 0, step: int = 0):
    rec = s.source.record(n)
    return build_example(rec, draw_choices(rec, s.cfg.doc.data, s.cfg.doc.seed, step, n), s.options)


@pytest.fixture(scope="module")
def straight(train_root, one_thread):
    """4 SFT steps straight through, with the base's weights recorded before."""
    s = open_tiny(train_root, "straight")
    base = {n: p.detach().clone() for n, p in s.run.model.transformer.named_parameters() if ".lora_" not in n}
    summary = train(s)
    return s, summary, base


def test_training_forward_is_the_sampling_model_fn(train_root):
    """Same x_t, t and masks: the training call (gradients on) gives the sampling velocity; checkpointing changes
    no gradient."""
    s = open_tiny(train_root, "parity")
    with torch.no_grad():
        for p in s.run.params:  # a LoRA that does something
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)
    enc = encode(s.run, example(s), s.text, "sdpa")
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(enc.x0.shape, generator=gen)
    t = torch.tensor([0.5])  # (t·1000 in float32)/1000 == t: the sampler's rounding is exact here
    xt = noisy(enc.x0, x1, t)
    v_train = enc.call(xt, t)
    assert v_train.requires_grad
    context, embeds, pooled, text_ids, img_ids, masks, guidance = enc.inputs
    model_fn = make_model_fn(s.run.model.transformer, context, embeds, pooled, text_ids, img_ids, masks, guidance)
    assert torch.equal(v_train.detach(), model_fn(xt, torch.tensor(0.5)))
    grads = []
    for checkpointing in (False, True):
        tr = s.run.model.transformer
        tr.enable_gradient_checkpointing() if checkpointing else tr.disable_gradient_checkpointing()
        for p in s.run.params:
            p.grad = None
        sft_loss(enc.call(xt, t), velocity_target(enc.x0, x1)).backward()
        grads.append([p.grad.clone() for p in s.run.params])
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-8) for a, b in zip(*grads))
    assert any(g.abs().sum() > 0 for g in grads[0])


def test_only_the_lora_trains(straight):
    s, summary, base = straight
    tr = s.run.model.transformer
    now = {n: p for n, p in tr.named_parameters() if ".lora_" not in n}
    assert set(now) == set(base) and all(torch.equal(now[n], base[n]) for n in base)  # base bit-identical
    names = lora.target_modules(tr, "r21")
    closed = lora.trainable_count(tr, names, 4)
    assert closed == sum(p.numel() for p in s.run.params) == sum(p.numel() for p in tr.parameters() if p.requires_grad)
    assert closed == sum(4 * (tr.get_submodule(n).in_features + tr.get_submodule(n).out_features) for n in names)
    assert all(p.dtype == torch.float32 for p in s.run.params)
    assert any(bool(p.abs().sum() > 0) for n, p in tr.named_parameters() if ".lora_B." in n)  # B moved off 0
    assert summary.step == 4 and summary.adapter.name == "contextgen_sft_4.safetensors"


def test_resume_is_bit_identical(straight, train_root):
    s, summary, _ = straight
    first = open_tiny(train_root, "halves", max_steps=2, train={"prefetch": "on"})  # threads change no number
    assert train(first).step == 2
    second = open_tiny(train_root, "halves", resume="auto")
    assert second.start_step == 2 and second.resumed
    assert train(second).step == 4
    a = adapter_tensors(summary.run_dir / "checkpoints" / "step-00000004" / "adapter.safetensors")
    b = adapter_tensors(train_root / "halves" / "checkpoints" / "step-00000004" / "adapter.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    fa, fb = adapter_tensors(summary.adapter), adapter_tensors(train_root / "halves" / "adapter" / summary.adapter.name)
    assert all(torch.equal(fa[k], fb[k]) for k in fa)
    logged = [line for line in (train_root / "halves" / "log.jsonl").read_text().splitlines()]
    assert len(logged) == 4  # steps 1-2 from the first half, 3-4 after the resume


def test_existing_run_needs_resume(straight, train_root):
    from ctxgen.core.errors import UsageError

    with pytest.raises(UsageError, match="holds a run at step 4; pass --resume auto"):
        open_tiny(train_root, "straight")
    with pytest.raises(UsageError, match="the config changed what is trained: optimizer.lr"):
        open_tiny(train_root, "straight", resume="auto", optimizer={"lr": 0.5})


def test_adapter_renders_like_the_policy_in_memory(straight, tmp_path):
    """`render --model tiny --adapter RUN/adapter/ --no-fuse` = the trained policy rendering from memory."""
    s, summary, _ = straight
    sp = prepare_scene(load_scene(SMALL), 16)
    renderer = Renderer(s.run.model, 16, "sdpa")
    mine = renderer.sample(sp, renderer.condition(sp), 1, 2, sp.scene.guidance).image
    adapter = str(summary.run_dir / "adapter")
    res = CliRunner().invoke(app, ["render", str(SMALL), "--model", "tiny", "--adapter", adapter, "--no-fuse",
                                   "--device", "cpu", "--dtype", "float32", "--steps", "2", "--text-len", "16",
                                   "--seed", "1", "--out", str(tmp_path), "--no-overlays"])
    assert res.exit_code == 0, res.output
    theirs = np.asarray(Image.open(tmp_path / "small" / "seed-1.png"))
    assert np.array_equal(mine, theirs)
    res = CliRunner().invoke(app, ["render", str(SMALL), "--model", "tiny", "--adapter", str(summary.adapter),
                                   "--device", "cpu", "--steps", "2", "--text-len", "16", "--seed", "1", "--out",
                                   str(tmp_path / "fused"), "--no-overlays"])
    fused = np.asarray(Image.open(tmp_path / "fused" / "small" / "seed-1.png")).astype(int)
    assert res.exit_code == 0 and np.abs(fused - mine).max() <= 2  # fused weights: rounding only


def probe_loss(s, examples) -> float:
    """The SFT loss at fixed noise and t = 0.5 on the given examples (no augmentation)."""
    total = 0.0
    for i, ex in enumerate(examples):
        enc = encode(s.run, ex, s.text, "sdpa")
        x1 = torch.randn(enc.x0.shape, generator=torch.Generator().manual_seed(i))
        t = torch.tensor([0.5])
        with torch.no_grad():
            total += float(sft_loss(enc.call(noisy(enc.x0, x1, t), t), velocity_target(enc.x0, x1)))
    return total / len(examples)


def test_overfitting_two_examples_halves_the_probe_loss(tmp_path):
    make_data(tmp_path, n=2)
    s = open_tiny(tmp_path, "overfit", lora={"rank": 64}, optimizer={"lr": 1.0e-2},
                  train={"max_steps": 60}, checkpoint={"every": 1000})
    plain = [build_example(r, Choices(False, ("plain",) * len(r.instances), 0), s.options)
             for r in (s.source.reader.record(0), s.source.reader.record(1))]
    before = probe_loss(s, plain)
    trainer = Trainer(s)
    while trainer.step < 60:
        trainer.train_step()
    trainer.prefetch.close()
    after = probe_loss(s, plain)
    assert after <= 0.5 * before, (before, after)


def test_sft_can_start_from_an_adapter_of_the_same_rank(straight, train_root):
    from ctxgen.core.errors import UserError

    s, summary, _ = straight
    cont = open_tiny(train_root, "continue", model={"init_adapter": "straight/adapter"})
    want, got = lora.policy_parts(s.run.model.transformer), lora.policy_parts(cont.run.model.transformer)
    assert want.keys() == got.keys()
    assert all(torch.equal(want[n].a, got[n].a) and torch.equal(want[n].b, got[n].b) for n in want)
    with pytest.raises(UserError, match="rank 4 but lora.rank is 8; set lora.rank: 4"):
        open_tiny(train_root, "continue8", model={"init_adapter": "straight/adapter"}, lora={"rank": 8})
