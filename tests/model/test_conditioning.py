"""Prompt embeddings, VAE context tokens (mode, shift/scale, 2x2 row-major packing) and decoding (R13, R20)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ctxgen.sampling.conditioning import decode_tokens, encode_context, encode_pixels, encode_prompt, t5_token_count
from ctxgen.layout.compose import Composition, PreparedRef

LONG = ("Modify the image to depict 'a cat'. While preserving the original layout, key object features and human "
        "identities (including facial details), adjust element poses for better composition.")  # fmt: skip


def _pixels(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (h, w, 3)).astype(np.float32)


def test_prompt_shapes_and_zero_ids(tiny_model):
    pe = encode_prompt(tiny_model, "a photo of a cat", 16)
    assert pe.prompt_embeds.shape == (1, 16, 32) and pe.pooled.shape == (1, 32)
    assert pe.text_ids.shape == (16, 3) and pe.text_ids.dtype == torch.float32 and not pe.text_ids.any()
    assert not pe.truncated
    again = encode_prompt(tiny_model, "a photo of a cat", 16)
    assert torch.equal(pe.prompt_embeds, again.prompt_embeds) and torch.equal(pe.pooled, again.pooled)
    other = encode_prompt(tiny_model, "a photo of a dog", 16)
    assert not torch.equal(pe.prompt_embeds, other.prompt_embeds)


def test_prompt_truncation_flag_and_warning(tiny_model, caplog):
    n = t5_token_count(tiny_model, LONG)
    assert n > 20
    with caplog.at_level(logging.DEBUG, logger="ctxgen.sampling.conditioning"):
        cut = encode_prompt(tiny_model, LONG, 20)
    assert cut.truncated and cut.prompt_embeds.shape == (1, 20, 32) and cut.n_tokens == n
    assert any(f"{n} T5 tokens" in r.getMessage() and "20" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="ctxgen.sampling.conditioning"):
        exact = encode_prompt(tiny_model, LONG, n)
    assert not exact.truncated and not [r for r in caplog.records if r.name == "ctxgen.sampling.conditioning"]


def test_encode_pixels_is_mode_shift_scale_packed_row_major(tiny_model):
    pixels = _pixels(48, 64, 0)
    tokens = encode_pixels(tiny_model, pixels)
    assert tokens.shape == (1, (48 // 16) * (64 // 16), 64)
    assert torch.equal(tokens, encode_pixels(tiny_model, pixels))  # deterministic: posterior mode, not a sample
    vae = tiny_model.pipe.vae
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous()  # (1, 3, h, w)
    with torch.no_grad():
        z = (vae.encode(x).latent_dist.mean - 0.1159) * 0.3611  # (1, 16, 6, 8)
    tw = 64 // 16
    for r, c in [(0, 0), (0, 3), (1, 2), (2, 3)]:
        token = tokens[0, r * tw + c].reshape(16, 2, 2)  # (C, 2, 2): channel-major, then the 2x2 patch row-major
        torch.testing.assert_close(token, z[0, :, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2], atol=1e-6, rtol=0)


def test_encode_pixels_ignores_memory_layout(tiny_model):
    pixels = _pixels(32, 32, 1)
    transposed = np.ascontiguousarray(pixels.transpose(1, 0, 2)).transpose(1, 0, 2)  # same values, other strides
    assert not transposed.flags["C_CONTIGUOUS"]
    assert torch.equal(encode_pixels(tiny_model, pixels), encode_pixels(tiny_model, transposed))
    with pytest.raises(ValueError, match="multiples of 16"):
        encode_pixels(tiny_model, _pixels(40, 32, 0))


def test_encode_context_is_layout_then_refs_in_order(tiny_model):
    refs = tuple(
        PreparedRef(index=i, pixels=_pixels(h, w, 10 + i), mask=np.ones((h, w), bool),
                    token_mask=np.ones((h // 16, w // 16), bool))
        for i, (h, w) in enumerate([(32, 48), (16, 16)])
    )  # fmt: skip
    plan = Composition(size=(64, 32), base=256, image=_pixels(32, 64, 9), refs=refs, order=(0, 1),
                      layer_masks=(), boxes=(), token_boxes=())  # fmt: skip
    context = encode_context(tiny_model, plan)
    assert context.shape == (1, 8 + 6 + 1, 64)
    torch.testing.assert_close(context[:, :8], encode_pixels(tiny_model, plan.image), atol=0, rtol=0)
    torch.testing.assert_close(context[:, 8:14], encode_pixels(tiny_model, refs[0].pixels), atol=0, rtol=0)
    torch.testing.assert_close(context[:, 14:], encode_pixels(tiny_model, refs[1].pixels), atol=0, rtol=0)


def test_decode_tokens_matches_manual_decode(tiny_model):
    tokens = torch.randn(1, 2 * 3, 64, generator=torch.Generator().manual_seed(0))  # H=32, W=48
    image = decode_tokens(tiny_model, tokens, 48, 32)
    assert image.shape == (32, 48, 3) and image.dtype == np.uint8
    assert np.array_equal(image, decode_tokens(tiny_model, tokens, 48, 32))
    z = tokens.reshape(1, 2, 3, 16, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(1, 16, 4, 6)  # (1, C, H/8, W/8)
    with torch.no_grad():
        x = tiny_model.pipe.vae.decode(z / 0.3611 + 0.1159).sample  # (1, 3, 32, 48)
    expected = ((x[0].permute(1, 2, 0) / 2 + 0.5).clamp(0, 1) * 255).round().numpy().astype(np.uint8)
    assert np.array_equal(image, expected)
    assert image.std() > 0
    with pytest.raises(ValueError, match="do not match"):
        decode_tokens(tiny_model, tokens, 64, 32)
