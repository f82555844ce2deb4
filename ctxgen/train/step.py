"""One micro-batch: an example through the inference conditioning (R13, R19), then the SFT (T2) or DPO (T4) loss.

The latents come from `encode_pixels` (VAE posterior mode, as ctxgen inference, R13; the layout then the
references, as `encode_context` orders them; parts no augmentation changes are cached per record), the
masks from `kernel_masks`, the model call from the sampling loop's `model_call` — with gradients on. x0, x1 and
x_t stay float32; the transformer sees `timestep = t` and embedded guidance (1.0 by default, T2).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ctxgen.sampling.conditioning import encode_pixels
from ctxgen.sampling.loop import VelocityFn, model_call
from ctxgen.sampling.processors import kernel_masks
from ctxgen.train.examples import TrainingExample
from ctxgen.train.losses import dpo_loss, noisy, sft_loss, velocity_target
from ctxgen.train.randomness import NOISE, keyed_seed


@dataclass
class Encoded:
    """One example on the device: clean latents and the velocity function of its conditioning."""

    x0: torch.Tensor  # float32 (1, M, 64): the target's latents
    rejected: torch.Tensor | None  # float32 (1, M, 64): DPO's rejected latents (the layout's, or a stored image's)
    call: VelocityFn  # v(x, timestep) through the trained (possibly DDP-wrapped) transformer
    reference: VelocityFn  # the same through the plain transformer (DPO reference, adapter disabled)
    inputs: tuple  # (context, prompt embeds, pooled, text ids, img ids, masks, guidance): what both calls close over


class LatentCache:
    """VAE latents of targets, stored rejected images and references, which no augmentation changes, by key
    (record id / part), least recently used first out, kept in CPU memory up to `max_bytes`."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes = max_bytes, 0
        self.items: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def latents(self, model, key: str, pixels: Callable[[], np.ndarray]) -> torch.Tensor:
        """encode_pixels(model, pixels()) (R13), from the cache (without computing the pixels) when it has the key."""
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                self.hits += 1
                return self.items[key].to(model.device)
        z = encode_pixels(model, pixels())  # (1, L, 64)
        with self.lock:
            self.misses += 1
            size = z.numel() * z.element_size()
            if self.max_bytes and size <= self.max_bytes and key not in self.items:
                self.items[key] = z.detach().cpu()
                self.bytes += size
                while self.bytes > self.max_bytes:
                    old = self.items.popitem(last=False)[1]
                    self.bytes -= old.numel() * old.element_size()
        return z


def encode(run, ex: TrainingExample, text, attention: str, rejected: str | None = None,
           cache: LatentCache | None = None) -> Encoded:
    """VAE latents, prompt embeddings, ids and masks of one example (once per micro-batch)."""
    model, m = run.model, ex.tokens.main_len
    cache = cache or LatentCache(0)
    with torch.no_grad():
        parts = [encode_pixels(model, ex.composition.image)]  # (1, M, 64): the layout, drawn anew each time
        parts += [cache.latents(model, key, lambda ref=ref: ref.pixels)
                  for key, ref in zip(ex.ref_keys, ex.composition.refs)]
        context = torch.cat(parts, dim=1)  # (1, M + sum L_n, 64): layout, then references (R13)
        x0 = cache.latents(model, f"{ex.record_id}/target", ex.target).float()  # (1, M, 64)
        rej = None
        if rejected == "stored" and ex.rejected_image is not None:
            rej = cache.latents(model, f"{ex.record_id}/rejected", ex.rejected).float()  # (1, M, 64)
        elif rejected is not None:
            rej = context[:, :m].float()  # T4: the auto layout image is the rejected sample
    embeds, pooled, text_ids = text(ex.prompt)
    img_ids = torch.from_numpy(ex.tokens.ids).to(model.device)  # (S - T, 3) float32, R14
    masks = kernel_masks(ex.masks, model.device, model.dtype, attention)
    guidance = run.cfg.doc.train.guidance
    args = (context, embeds, pooled, text_ids, img_ids, masks, guidance)
    return Encoded(x0, rej, model_call(model.transformer, *args, forward=run.forward),
                   model_call(model.transformer, *args), args)


def noise_and_t(seed: int, step: int, index: int, shape: tuple[int, ...], mean: float = 0.0, std: float = 1.0
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """T2: t = sigmoid(mean + std·randn(1)) drawn first, then x1 = randn in the packed (B, M, 64) shape; float32 CPU."""
    gen = torch.Generator("cpu").manual_seed(keyed_seed(seed, NOISE, step, index))
    t = torch.sigmoid(mean + std * torch.randn(1, generator=gen))  # (1,) logit-normal
    x1 = torch.randn(shape, generator=gen)  # (B, M, 64)
    return t, x1


def draw(run, step: int, index: int, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """T2: (t, x1) for this (step, index), on the device; t first, x1 in the packed shape of x0."""
    ts = run.cfg.doc.train.t_sampling
    t, x1 = noise_and_t(run.cfg.doc.seed, step, index, tuple(x0.shape), ts.mean, ts.std)
    return t.to(x0.device), x1.to(device=x0.device, dtype=x0.dtype)


def sft_step(run, enc: Encoded, step: int, index: int) -> tuple[torch.Tensor, dict]:
    """T2 / R22 on one example: the flow-matching loss over the M main tokens."""
    t, x1 = draw(run, step, index, enc.x0)
    with run.accelerator.autocast():
        v = enc.call(noisy(enc.x0, x1, t), t)  # (1, M, 64)
    loss = sft_loss(v, velocity_target(enc.x0, x1))
    return loss, {"t": float(t)}


@contextmanager
def adapters_disabled(transformer) -> Iterator[None]:
    """T4's reference: the same transformer with the trained LoRA switched off (the SFT adapter stays fused)."""
    transformer.disable_adapters()
    try:
        yield
    finally:
        transformer.enable_adapters()


def dpo_step(run, enc: Encoded, step: int, index: int) -> tuple[torch.Tensor, dict]:
    """T4 / R23 on one pair: preferred = target, rejected = layout (or stored); same x1 and t for both."""
    t, x1 = draw(run, step, index, enc.x0)
    x0 = torch.cat([enc.x0, enc.rejected], dim=0)  # (2, M, 64): preferred, rejected
    x1 = torch.cat([x1, x1], dim=0)  # (2, M, 64): the same noise for both sides
    xt, u = noisy(x0, x1, t), velocity_target(x0, x1)
    with run.accelerator.autocast():
        v = enc.call(xt, t)  # (2, M, 64)
        with torch.no_grad(), adapters_disabled(run.model.transformer):
            v_ref = enc.reference(xt, t)  # (2, M, 64)
    terms = dpo_loss(v, v_ref, u, run.cfg.doc.dpo.beta)
    return terms.loss, {"t": float(t), "accuracy": float(terms.accuracy), "margin": float(terms.inside.mean()),
                        "err_w": float(terms.policy[0]), "err_l": float(terms.policy[1])}
