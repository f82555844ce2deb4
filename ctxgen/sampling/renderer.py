"""Stages 4-5: conditioning once per scene, then one short sampling loop per seed (R13-R20; docs/spec.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctxgen.core.errors import ModelError
from ctxgen.sequence.prepare import PreparedScene

log = logging.getLogger(__name__)

StepCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Conditioning:
    """Per-scene tensors reused for every seed: prompt embeddings, context latents, ids and masks (R19)."""

    prompt_embeds: Any  # torch (1, T, D)
    pooled: Any  # torch (1, Dp)
    text_ids: Any  # torch (T, 3)
    context: Any  # torch (1, M + sum L_n, 64): layout then refs
    img_ids: Any  # torch float32 (S - T, 3)
    masks: dict[str, Any]  # kind -> attention mask in the kernel's form (additive bias or BlockMask)
    truncated: bool  # the prompt was longer than T5's text_len tokens
    prompt_tokens: int  # T5 tokens the wrapped prompt needs
    seconds: float
    peak_memory: int | None = None  # bytes on the accelerator while conditioning, None on CPU


@dataclass(frozen=True)
class Sample:
    """One rendered image and what it cost."""

    seed: int
    image: np.ndarray  # uint8 (H, W, 3)
    seconds: float
    peak_memory: int | None  # peak bytes on the accelerator over conditioning and sampling, None on CPU
    timings: dict[str, float] = field(default_factory=dict)


def check_finite(latents: Any, sp: PreparedScene) -> None:
    """NaN or infinite latents mean damaged or overflowing weights: say so instead of writing a black image."""
    import torch

    if not bool(torch.isfinite(latents).all()):
        raise ModelError(f"{sp.scene.display_path or sp.scene.source}: the model produced NaN or infinite values; "
                         "its weights (base or adapter) are damaged or overflow in this dtype: check the files, "
                         "or try --dtype float32")


def check_not_constant(image: np.ndarray, sp: PreparedScene) -> None:
    """A single-colour image is never a render: the weights are degenerate (e.g. an all-zero or saturated adapter)."""
    if image.size and int(image.max()) == int(image.min()):
        raise ModelError(f"{sp.scene.display_path or sp.scene.source}: the render came out a single flat colour "
                         f"({int(image.min())}); the weights (base or adapter) are degenerate, check the files")


class Renderer:
    """Holds a loaded model with ContextGen processors installed; renders scene plans with one attention kernel."""

    def __init__(self, model: Any, text_len: int, attention: str = "auto"):
        from ctxgen.sampling.processors import install_processors, resolve_attention
        from ctxgen.sequence.masks import block_schedule

        self.model = model
        self.text_len = text_len
        self.attention = resolve_attention(attention, model.device)  # "sdpa" | "flex"
        self.schedule = block_schedule(model.n_double, model.n_single)
        install_processors(model.transformer, self.schedule)
        log.info("attention kernel: %s", self.attention)

    def condition(self, sp: PreparedScene) -> Conditioning:
        """Encode the prompt and the context images, move ids and masks to the device (once per scene, R19)."""
        import torch

        from ctxgen.sampling.processors import kernel_masks
        from ctxgen.sampling.conditioning import encode_context, encode_prompt
        from ctxgen.models.memory import read_peak, reset_peak

        t0 = time.perf_counter()
        dev = self.model.device
        reset_peak(dev)
        with torch.inference_mode():
            prompt = encode_prompt(self.model, sp.prompt, self.text_len)
            context = encode_context(self.model, sp.composition)  # (1, M + sum L_n, 64)
        img_ids = torch.from_numpy(sp.tokens.ids).to(dev)  # (S - T, 3) float32, R14
        masks = kernel_masks(sp.masks, dev, self.model.dtype, self.attention)
        return Conditioning(
            prompt.prompt_embeds, prompt.pooled, prompt.text_ids, context, img_ids, masks, prompt.truncated, prompt.n_tokens,
            time.perf_counter() - t0, read_peak(dev),
        )

    def sample(self, sp: PreparedScene, cond: Conditioning, seed: int, steps: int, guidance: float,
               on_step: StepCallback | None = None) -> Sample:
        """Draw the seed's noise, run the Euler loop and decode (R20); peak memory includes the conditioning."""
        import torch

        from ctxgen.sampling.conditioning import decode_tokens
        from ctxgen.models.memory import read_peak, reset_peak
        from ctxgen.sampling.loop import denoise, initial_noise, make_model_fn, sigmas_and_timesteps

        W, H = sp.composition.size
        dev, dtype = self.model.device, self.model.dtype
        reset_peak(dev)
        t0 = time.perf_counter()
        with torch.inference_mode():
            sigmas, _ = sigmas_and_timesteps(self.model.pipe.scheduler, steps, sp.tokens.main_len, dev)
            x = initial_noise(seed, W, H, device=dev, dtype=dtype)  # (1, M, 64)
            fn = make_model_fn(self.model.transformer, cond.context, cond.prompt_embeds, cond.pooled, cond.text_ids,
                               cond.img_ids, cond.masks, guidance)
            x = denoise(fn, x, sigmas, on_step=on_step)
            t1 = time.perf_counter()
            check_finite(x, sp)
            image = decode_tokens(self.model, x, W, H)  # (H, W, 3) uint8
        check_not_constant(image, sp)
        t2 = time.perf_counter()
        peak = read_peak(dev)
        if peak is not None and cond.peak_memory is not None:
            peak = max(peak, cond.peak_memory)
        return Sample(seed, image, t2 - t0, peak, {"denoise_s": t1 - t0, "decode_s": t2 - t1})
