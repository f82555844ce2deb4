"""Stage 5b: the sampling loop (R20; docs/spec.md): schedule, initial noise, Euler flow matching, the model call.

ctxgen owns the loop and reuses diffusers' parts (scheduler, `calculate_shift`, `randn_tensor`,
`_pack_latents`); every number matches what `FluxKontextPipeline.__call__` computes for the same inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from ctxgen.core.errors import UserError
from ctxgen.sampling.processors import MASKS_KWARG, MaskedFluxAttnProcessor

logger = logging.getLogger(__name__)

# FluxTransformer2DModel.forward multiplies `timestep` by 1000 and the pipeline divides the scheduler's
# timesteps (sigma * num_train_timesteps, 1000 for FLUX) by 1000 before the call.
TIMESTEP_SCALE = 1000

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sigmas_and_timesteps(
    scheduler, steps: int, main_len: int, device: str | torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shifted sigmas (steps + 1, ending in 0) and timesteps (steps,), shift mu from the main token count M (R20)."""
    from diffusers.pipelines.flux.pipeline_flux_kontext import calculate_shift

    if steps < 1:
        raise UserError(f"sampling: steps must be at least 1, got {steps}; pass a positive step count")
    sigmas = np.linspace(1.0, 1 / steps, steps)
    cfg = scheduler.config
    mu = calculate_shift(
        main_len,
        cfg.get("base_image_seq_len", 256),
        cfg.get("max_image_seq_len", 4096),
        cfg.get("base_shift", 0.5),
        cfg.get("max_shift", 1.15),
    )
    scheduler.set_timesteps(sigmas=sigmas, mu=mu, device=device)
    logger.debug("schedule: steps=%d M=%d mu=%.6f", steps, main_len, mu)
    return scheduler.sigmas, scheduler.timesteps


def initial_noise(
    seed: int,
    W: int,
    H: int,
    channels: int = 16,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Packed start noise (1, M, 4·channels), drawn as Kontext's `prepare_latents` does with a CPU generator (R20)."""
    from diffusers.pipelines.flux.pipeline_flux_kontext import FluxKontextPipeline
    from diffusers.utils.torch_utils import randn_tensor

    h, w = 2 * (H // 16), 2 * (W // 16)
    generator = torch.Generator("cpu").manual_seed(seed)
    noise = randn_tensor((1, channels, h, w), generator=generator, device=torch.device(device), dtype=dtype)
    return FluxKontextPipeline._pack_latents(noise, 1, channels, h, w)  # (1, (h/2)·(w/2), 4·channels)


def denoise(
    model_fn: ModelFn,
    latents: torch.Tensor,
    sigmas: torch.Tensor,
    on_step: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Euler flow matching x ← x + (σ_next − σ)·v(x, σ) over consecutive sigmas, as scheduler.step (R20)."""
    x = latents
    n = len(sigmas) - 1
    for i in range(n):
        v = model_fn(x, sigmas[i])  # (1, M, 64)
        # FlowMatchEulerDiscreteScheduler.step: upcast the sample, add, cast back to the model's dtype.
        x = (x.to(torch.float32) + (sigmas[i + 1] - sigmas[i]) * v).to(v.dtype)
        if on_step is not None:
            on_step(i, n)
    return x


def batched(t: torch.Tensor, b: int) -> torch.Tensor:
    """A per-scene tensor (1, ...) broadcast to b samples along dim 0 (a view; unchanged when it has b already)."""
    return t if t.shape[0] == b else t.expand(b, *t.shape[1:])


def velocity(
    transformer: torch.nn.Module,
    x: torch.Tensor,
    timestep: torch.Tensor,
    context_tokens: torch.Tensor,
    prompt_embeds: torch.Tensor,
    pooled: torch.Tensor,
    ids_txt: torch.Tensor,
    ids_img: torch.Tensor,
    guidance: torch.Tensor | None,
    attn_kwargs: dict | None,
) -> torch.Tensor:
    """The one model call of sampling (R20) and training (T2): cat([x, layout, refs]) in, the first M outputs out.

    Gradients follow the caller's mode; `transformer` may be a wrapper (DDP) around the FLUX transformer.
    """
    b = x.shape[0]
    hidden = torch.cat([x, batched(context_tokens, b)], dim=1)  # (B, M + C, 64)
    out = transformer(
        hidden_states=hidden,
        timestep=batched(timestep, b),
        guidance=None if guidance is None else batched(guidance, b),
        pooled_projections=batched(pooled, b),
        encoder_hidden_states=batched(prompt_embeds, b),
        txt_ids=ids_txt,
        img_ids=ids_img,
        joint_attention_kwargs=attn_kwargs,
        return_dict=False,
    )[0]  # (B, M + C, 64)
    return out[:, : x.shape[1]]  # (B, M, 64)


VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def model_call(
    transformer: torch.nn.Module,
    context_tokens: torch.Tensor,
    prompt_embeds: torch.Tensor,
    pooled: torch.Tensor,
    text_ids: torch.Tensor,
    img_ids: torch.Tensor,
    masks: dict[str, torch.Tensor] | None,
    guidance: float,
    forward: torch.nn.Module | None = None,
) -> VelocityFn:
    """v(x, timestep) for one scene: inputs checked and cast once (R14, R18-R20), then `velocity` on each call.

    `forward` is what gets called (e.g. the DDP-wrapped transformer in training); checks read `transformer`.
    """
    main_len = img_ids.shape[0] - context_tokens.shape[1]  # M = (S - T) - C
    seq_len = text_ids.shape[0] + img_ids.shape[0]  # S
    if masks is not None:
        if not all(isinstance(p, MaskedFluxAttnProcessor) for p in transformer.attn_processors.values()):
            raise ValueError("masks given but ctxgen processors are not installed: call install_processors first")
        for kind, mask in masks.items():
            if mask.shape[-2:] != (seq_len, seq_len):
                raise ValueError(f"{kind} mask is {tuple(mask.shape)} but the sequence has S={seq_len} tokens")
    ids_txt = text_ids.to(torch.float32)  # (T, 3), R14: ids stay float32
    ids_img = img_ids.to(torch.float32)  # (S - T, 3)
    guidance_t = None
    if transformer.config.guidance_embeds:
        guidance_t = torch.full([1], guidance, device=context_tokens.device, dtype=torch.float32)  # (1,)
    attn_kwargs = None if masks is None else {MASKS_KWARG: masks}
    call = transformer if forward is None else forward

    def fn(x: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != main_len:
            raise ValueError(f"latents have {x.shape[1]} tokens but the scene has M={main_len} main tokens")
        return velocity(call, x, timestep, context_tokens, prompt_embeds, pooled, ids_txt, ids_img, guidance_t,
                        attn_kwargs)

    return fn


def make_model_fn(
    transformer: torch.nn.Module,
    context_tokens: torch.Tensor,
    prompt_embeds: torch.Tensor,
    pooled: torch.Tensor,
    text_ids: torch.Tensor,
    img_ids: torch.Tensor,
    masks: dict[str, torch.Tensor] | None,
    guidance: float,
) -> ModelFn:
    """Velocity v(x, σ) of the main tokens: transformer on cat([x, layout, refs]), first M outputs kept (R20)."""
    call = model_call(transformer, context_tokens, prompt_embeds, pooled, text_ids, img_ids, masks, guidance)

    def model_fn(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        t = (sigma * TIMESTEP_SCALE).reshape(1).to(x.dtype)  # (1,) the pipeline's `t.expand(B).to(latents.dtype)`
        with torch.no_grad():
            return call(x, t / TIMESTEP_SCALE)  # (1, M, 64)

    return model_fn
