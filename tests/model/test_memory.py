"""Memory tiers: where components sit, that streaming changes no number, and the low tier's refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ctxgen.sampling.conditioning import decode_tokens, encode_pixels, encode_prompt
from ctxgen.core.errors import UserError
from ctxgen.models.memory import check_memory_tier, nf4_kwargs, placement, read_peak, reset_peak
from ctxgen.models import loading
from ctxgen.models.loading import load_base, load_model
from ctxgen.models.registry import TINY, ModelSpec
from tests.model.helpers import write_small_scene

TEXT_LEN = 8
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def spec(tiny_model_dir) -> ModelSpec:
    return ModelSpec(preset="tiny", base=str(tiny_model_dir / "base"), adapter=str(tiny_model_dir / "adapter"))


@pytest.fixture(scope="module")
def balanced(spec):
    return load_model(spec, device="cpu", dtype="float32", memory="balanced")


def test_full_tier_keeps_everything_on_the_device(tiny_model):
    assert tiny_model.memory == "full"
    names = ("transformer", "text_encoder", "text_encoder_2", "vae")
    assert placement(tiny_model.pipe) == dict.fromkeys(names, "cpu")


def test_balanced_tier_streams_encoders_and_vae(balanced):
    assert balanced.memory == "balanced" and balanced.fused
    where = placement(balanced.pipe)
    assert where["transformer"] == "cpu"  # resident on the device (the CPU here)
    assert {where[n] for n in ("text_encoder", "text_encoder_2", "vae")} == {"cpu->cpu"}  # streamed per layer
    assert all(p.device.type == "meta" for p in balanced.pipe.text_encoder_2.parameters())
    assert not hasattr(balanced.transformer, "_hf_hook")


def test_balanced_tier_changes_no_number(balanced, tiny_model):
    prompt = "a photo of a cat and a dog"
    got, want = encode_prompt(balanced, prompt, TEXT_LEN), encode_prompt(tiny_model, prompt, TEXT_LEN)
    assert torch.equal(got.prompt_embeds, want.prompt_embeds) and torch.equal(got.pooled, want.pooled)
    assert got.prompt_embeds.device.type == "cpu"
    pixels = np.random.default_rng(0).uniform(-1, 1, (32, 48, 3)).astype(np.float32)
    latents = encode_pixels(tiny_model, pixels)  # (1, 6, 64)
    assert torch.equal(encode_pixels(balanced, pixels), latents)
    assert np.array_equal(decode_tokens(balanced, latents, 48, 32), decode_tokens(tiny_model, latents, 48, 32))
    fused, ref = balanced.transformer.state_dict(), tiny_model.transformer.state_dict()
    assert fused.keys() == ref.keys() and all(torch.equal(fused[k], ref[k]) for k in ref)  # adapter fused the same
    assert placement(balanced.pipe)["text_encoder_2"] == "cpu->cpu"  # still offloaded after use


def test_balanced_renders_like_full(balanced, spec, tmp_path):
    from ctxgen.sequence.prepare import prepare_scene
    from ctxgen.sampling.renderer import Renderer
    from ctxgen.scene.model import load_scene

    full = load_model(spec, device="cpu", dtype="float32")  # a fresh model: Renderer installs processors
    sp = prepare_scene(load_scene(write_small_scene(tmp_path)), TEXT_LEN)
    images = []
    for model in (full, balanced):
        renderer = Renderer(model, TEXT_LEN, attention="sdpa")
        images.append(renderer.sample(sp, renderer.condition(sp), seed=5, steps=2, guidance=3.5).image)
    assert np.array_equal(images[0], images[1])


def test_low_tier_refusals(spec):
    with pytest.raises(UserError, match="unknown tier 'tiny'"):
        check_memory_tier("tiny", torch.device("cpu"))
    with pytest.raises(UserError, match="need a CUDA GPU but the device is cpu; use --memory balanced"):
        load_model(spec, device="cpu", dtype="float32", memory="low")
    with pytest.raises(UserError, match=r'needs bitsandbytes.*pip install -e "\.\[low-memory\]"'):
        check_memory_tier("low", torch.device("cuda"))  # no bitsandbytes on this machine
    check_memory_tier("balanced", torch.device("cpu"))
    with pytest.raises(UserError, match="tiny base is built in memory"):
        load_base(TINY, torch.float32, quantization=object())


def test_low_tier_config_reaches_from_pretrained(monkeypatch, tiny_model_dir):
    from diffusers import FluxKontextPipeline

    seen = {}

    def fake_from_pretrained(source, **kwargs):
        seen.update(kwargs, source=source)
        return "pipe"

    monkeypatch.setattr(FluxKontextPipeline, "from_pretrained", fake_from_pretrained)
    marker = object()
    assert load_base(str(tiny_model_dir / "base"), torch.bfloat16, quantization=marker) == "pipe"
    assert seen["quantization_config"] is marker and seen["use_safetensors"] is True
    seen.clear()
    load_base(str(tiny_model_dir / "base"), torch.bfloat16)
    assert "quantization_config" not in seen and seen["source"] == str(tiny_model_dir / "base")


def test_nf4_settings():
    assert nf4_kwargs(torch.bfloat16) == {
        "load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
        "bnb_4bit_compute_dtype": torch.bfloat16,
    }  # fmt: skip


def test_peak_memory_is_none_on_cpu():
    reset_peak(torch.device("cpu"))
    assert read_peak(torch.device("cpu")) is None
    assert loading.LoadedModel.__dataclass_fields__["memory"].default == "full"


def test_tier_table_is_counted_from_the_architecture():
    from ctxgen.models.tiers import TIER_SIZES, architecture_sizes

    assert architecture_sizes() == TIER_SIZES  # the real configs on the meta device, no guessing
