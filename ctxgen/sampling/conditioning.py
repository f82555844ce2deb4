"""Stage 4: prompt embeddings, VAE context tokens and decoding (R3, R13, R20; docs/spec.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ctxgen.core.units import TOKEN

if TYPE_CHECKING:
    import torch

    from ctxgen.layout.compose import Composition
    from ctxgen.models.loading import LoadedModel

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class PromptEmbeds:
    """Both text encoders' outputs for one prompt (R13 text segment)."""

    prompt_embeds: torch.Tensor  # (1, T, D) T5 hidden states
    pooled: torch.Tensor  # (1, Dp) CLIP pooled output
    text_ids: torch.Tensor  # float32 (T, 3), all zeros (R14)
    truncated: bool  # True when T5 saw more than T tokens and the tail was cut
    n_tokens: int = 0  # T5 tokens the wrapped prompt needs (with </s>), before padding or truncation


def t5_token_count(model: LoadedModel, text: str) -> int:
    """How many T5 tokens (with </s>) the text needs before padding/truncation."""
    return len(model.pipe.tokenizer_2(text, truncation=False).input_ids)


def encode_prompt(model: LoadedModel, text: str, text_len: int) -> PromptEmbeds:
    """CLIP pooled + T5 (padded/truncated to text_len) through the pipeline's encode_prompt (R13, R20)."""
    import torch

    n_tokens = t5_token_count(model, text)
    truncated = n_tokens > text_len
    if truncated:
        logger.debug(
            "prompt is %d T5 tokens but the text length is %d: the last %d tokens are dropped",
            n_tokens, text_len, n_tokens - text_len,
        )  # fmt: skip
    with torch.no_grad():
        embeds, pooled, text_ids = model.pipe.encode_prompt(
            prompt=text, prompt_2=None, device=model.device, max_sequence_length=text_len
        )
    return PromptEmbeds(embeds, pooled, text_ids.to(torch.float32), truncated, n_tokens)


def _check_pixels(pixels: np.ndarray) -> None:
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"pixels must be (h, w, 3), got {pixels.shape}")
    if pixels.shape[0] % TOKEN or pixels.shape[1] % TOKEN:
        raise ValueError(f"pixel height and width must be multiples of {TOKEN}, got {pixels.shape[:2]}")


def encode_pixels(model: LoadedModel, pixels: np.ndarray) -> torch.Tensor:
    """float32 (h, w, 3) in [-1, 1] -> (1, L, 64): VAE posterior mode, (z - shift) * scale, packed 2x2 (R13)."""
    import torch

    _check_pixels(pixels)
    pipe, vae = model.pipe, model.pipe.vae
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))  # (h, w, 3)
    x = x.permute(2, 0, 1).unsqueeze(0).contiguous()  # (1, 3, h, w) NCHW contiguous (R13 CPU GroupNorm note)
    x = x.to(device=model.device, dtype=vae.dtype)
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()  # (1, C, h/8, w/8), deterministic
    z = (z - vae.config.shift_factor) * vae.config.scaling_factor
    _, c, lh, lw = z.shape
    return pipe._pack_latents(z, 1, c, lh, lw)  # (1, (lh/2)*(lw/2), 4C)


def encode_context(model: LoadedModel, comp: Composition) -> torch.Tensor:
    """Layout then references in scene order -> (1, M + sum L_n, 64) (R13)."""
    import torch

    parts = [encode_pixels(model, comp.image)]  # (1, M, 64)
    parts += [encode_pixels(model, ref.pixels) for ref in comp.refs]  # (1, L_n, 64) each
    return torch.cat(parts, dim=1)  # (1, M + sum L_n, 64)


def decode_tokens(model: LoadedModel, tokens: torch.Tensor, W: int, H: int) -> np.ndarray:
    """(1, M, 64) main tokens -> uint8 (H, W, 3): unpack, z / scale + shift, VAE decode (R20)."""
    import torch

    m = (W // TOKEN) * (H // TOKEN)
    if W % TOKEN or H % TOKEN or tokens.ndim != 3 or tokens.shape[:2] != (1, m):
        raise ValueError(f"tokens {tuple(tokens.shape)} do not match a {W}x{H} canvas (need (1, {m}, C))")
    pipe, vae = model.pipe, model.pipe.vae
    z = pipe._unpack_latents(tokens, H, W, pipe.vae_scale_factor)  # (1, C, H/8, W/8)
    z = z / vae.config.scaling_factor + vae.config.shift_factor
    with torch.no_grad():
        image = vae.decode(z.to(device=model.device, dtype=vae.dtype), return_dict=False)[0]  # (1, 3, H, W)
    array = pipe.image_processor.postprocess(image, output_type="np")  # (1, H, W, 3) float in [0, 1]
    return (array[0] * 255).round().astype(np.uint8)  # (H, W, 3), as diffusers' numpy_to_pil
