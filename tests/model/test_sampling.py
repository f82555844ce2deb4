"""The sampling loop against diffusers' FluxKontextPipeline parts (R20), float32 CPU unless stated."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.flux.pipeline_flux_kontext import FluxKontextPipeline, calculate_shift, retrieve_timesteps

from ctxgen.sampling.processors import MaskedFluxAttnProcessor, install_processors
from ctxgen.core.errors import UserError
from ctxgen.sampling.loop import denoise, initial_noise, make_model_fn, sigmas_and_timesteps
from tests.model.helpers import attention_masks, restore_processors
from tests.model.helpers import tiny_transformer as _tiny_transformer

# The scheduler config shipped with FLUX.1-Kontext-dev (scheduler/scheduler_config.json).
FLUX_SCHEDULER = dict(
    num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
    base_image_seq_len=256, max_image_seq_len=4096,
)
T, W, H, C = 6, 64, 48, 20  # text tokens, canvas px (M = 4·3 = 12), context tokens (layout 12 + one 2×4 ref)
M = (W // 16) * (H // 16)
S = T + M + C


def tiny_transformer():
    """The shared tiny transformer with 1 double / 2 single blocks."""
    return _tiny_transformer(1, 2)


def scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER)


def conditioning(seed: int = 3) -> dict[str, torch.Tensor]:
    """Per-scene tensors for make_model_fn: context, text, ids (main (0,y,x), layout (1,y,x), ref (1,3+y,4+x))."""
    g = torch.Generator().manual_seed(seed)
    grid = [(y, x) for y in range(H // 16) for x in range(W // 16)]
    ids = [(0, y, x) for y, x in grid] + [(1, y, x) for y, x in grid]
    ids += [(1, H // 16 + y, W // 16 + x) for y in range(2) for x in range(4)]
    return dict(
        context_tokens=torch.randn(1, C, 64, generator=g),  # (1, C, 64)
        prompt_embeds=torch.randn(1, T, 32, generator=g),  # (1, T, 32)
        pooled=torch.randn(1, 32, generator=g),  # (1, 32)
        text_ids=torch.zeros(T, 3),
        img_ids=torch.tensor(ids, dtype=torch.float32),  # (M + C, 3)
    )


def ica_like_masks() -> tuple[np.ndarray, np.ndarray]:
    """CLA/ICA masks (R15, R16) for one ref whose box covers the first main row."""
    cla = np.zeros((S, S), bool)
    cla[: T + 2 * M, : T + 2 * M] = True
    ref = np.arange(T + 2 * M, S)
    cla[ref, :T] = True
    cla[np.ix_(ref, ref[:6])] = True  # foreground = the first 6 ref tokens
    ica = cla.copy()
    ica[np.ix_(np.arange(T, T + W // 16), ref[:6])] = True
    return cla, ica


@pytest.mark.parametrize("steps,width,height", [(28, 768, 768), (28, 1024, 1024), (4, 512, 768), (1, 64, 48)])
def test_schedule_matches_pipeline(steps, width, height):
    main_len = (width // 16) * (height // 16)
    sigmas, timesteps = sigmas_and_timesteps(scheduler(), steps, main_len, "cpu")
    ref = scheduler()  # what FluxKontextPipeline.__call__ step 5 does, with image_seq_len = latents.shape[1] = M
    mu = calculate_shift(main_len, 256, 4096, 0.5, 1.15)
    ref_t, n = retrieve_timesteps(ref, steps, "cpu", sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    assert n == steps and sigmas.shape == (steps + 1,) and sigmas[-1] == 0
    assert torch.equal(timesteps, ref_t) and torch.equal(sigmas, ref.sigmas)
    assert sigmas[0] == 1 and bool((sigmas[1:] < sigmas[:-1]).all())


def test_schedule_rejects_zero_steps():
    with pytest.raises(UserError, match="steps"):
        sigmas_and_timesteps(scheduler(), 0, M, "cpu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_initial_noise_matches_prepare_latents(dtype):
    pipe = FluxKontextPipeline(
        scheduler=scheduler(), vae=None, text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None,
        transformer=None,
    )
    for seed, width, height in ((0, 64, 48), (1234, 160, 96)):
        ours = initial_noise(seed, width, height, dtype=dtype)
        generator = torch.Generator("cpu").manual_seed(seed)
        ref, _, _, _ = pipe.prepare_latents(None, 1, 16, height, width, dtype, torch.device("cpu"), generator)
        assert ours.shape == (1, (width // 16) * (height // 16), 64) and ours.dtype == dtype
        assert torch.equal(ours, ref)
    assert not torch.equal(initial_noise(0, 64, 48), initial_noise(1, 64, 48))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_denoise_matches_scheduler_step(dtype):
    weight = torch.randn(64, 64, generator=torch.Generator().manual_seed(5)).to(dtype) / 8

    def velocity(x, t):  # any smooth function of (x, sigma)
        return torch.tanh(x @ weight + t.to(dtype))

    sigmas, timesteps = sigmas_and_timesteps(scheduler(), 7, M, "cpu")
    x0 = initial_noise(7, W, H, dtype=dtype)
    seen = []
    ours = denoise(lambda x, s: velocity(x, s), x0, sigmas, on_step=lambda i, n: seen.append((i, n)))
    ref_sched = scheduler()
    ref_t, _ = retrieve_timesteps(ref_sched, 7, "cpu", sigmas=np.linspace(1.0, 1 / 7, 7), mu=calculate_shift(M))
    ref_sched.set_begin_index(0)
    x = x0
    for i, t in enumerate(ref_t):
        x = ref_sched.step(velocity(x, ref_sched.sigmas[i]), t, x, return_dict=False)[0]
    assert seen == [(i, 7) for i in range(7)]
    assert ours.dtype == dtype and torch.equal(ours, x)
    assert not torch.equal(ours, x0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_model_fn_feeds_the_pipeline_call(dtype):
    calls = []

    class Spy(torch.nn.Module):
        """Records the keywords of each call and returns 2·hidden_states."""

        config = SimpleNamespace(guidance_embeds=True)
        attn_processors = {"single_transformer_blocks.0.attn.processor": MaskedFluxAttnProcessor("ica")}

        def forward(self, **kw):
            calls.append(kw)
            return (kw["hidden_states"] * 2,)

    spy = Spy()
    cond = conditioning()
    cond["context_tokens"] = cond["context_tokens"].to(dtype)
    masks = attention_masks(*ica_like_masks(), "cpu")
    fn = make_model_fn(spy, **cond, masks=masks, guidance=3.5)
    sigmas, timesteps = sigmas_and_timesteps(scheduler(), 5, M, "cpu")
    x = initial_noise(0, W, H, dtype=dtype)
    v = fn(x, sigmas[2])
    kw = calls[0]
    assert torch.equal(v, 2 * x)  # first M tokens kept
    assert torch.equal(kw["hidden_states"], torch.cat([x, cond["context_tokens"]], dim=1))
    assert torch.equal(kw["timestep"], timesteps[2].expand(1).to(x.dtype) / 1000)  # as FluxKontextPipeline
    assert torch.equal(kw["guidance"], torch.full([1], 3.5))
    assert kw["joint_attention_kwargs"] == {"ctxgen_masks": masks} and kw["return_dict"] is False
    assert kw["img_ids"].dtype == torch.float32 and torch.equal(kw["img_ids"], cond["img_ids"])
    assert make_model_fn(spy, **cond, masks=None, guidance=3.5)(x, sigmas[0]) is not None
    assert calls[1]["joint_attention_kwargs"] is None  # stock processors get no unknown keyword
    with pytest.raises(ValueError, match="main tokens"):
        fn(x[:, :-1], sigmas[0])
    with pytest.raises(ValueError, match="S=38"):
        make_model_fn(spy, **cond, masks={"cla": masks["cla"][..., :-1, :-1]}, guidance=3.5)


def sample(model, seed: int, steps: int = 3) -> torch.Tensor:
    """One full masked sampling run on the tiny transformer."""
    cla, ica = ica_like_masks()
    fn = make_model_fn(model, **conditioning(), masks=attention_masks(cla, ica, "cpu"), guidance=3.5)
    sigmas, _ = sigmas_and_timesteps(scheduler(), steps, M, "cpu")
    return denoise(fn, initial_noise(seed, W, H), sigmas)


def test_sampling_is_deterministic_per_seed():
    model = tiny_transformer()
    old = install_processors(model, (("cla",), ("ica", "cla")))
    try:
        a, b, other = sample(model, 11), sample(model, 11), sample(model, 12)
    finally:
        restore_processors(model, old)
    assert a.shape == (1, M, 64) and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert (a - other).abs().max() > 0.1


def test_model_fn_refuses_masks_without_processors():
    masks = attention_masks(*ica_like_masks(), "cpu")
    with pytest.raises(ValueError, match="install_processors"):
        make_model_fn(tiny_transformer(), **conditioning(), masks=masks, guidance=3.5)


def test_model_fn_equals_direct_transformer_call():
    model = tiny_transformer()
    cond = conditioning()
    x = initial_noise(4, W, H)
    sigma = torch.tensor(0.625)
    v = make_model_fn(model, **cond, masks=None, guidance=2.0)(x, sigma)
    with torch.no_grad():
        ref = model(
            hidden_states=torch.cat([x, cond["context_tokens"]], dim=1), timestep=torch.tensor([0.625]),
            guidance=torch.tensor([2.0]), pooled_projections=cond["pooled"],
            encoder_hidden_states=cond["prompt_embeds"], txt_ids=cond["text_ids"], img_ids=cond["img_ids"],
            return_dict=False,
        )[0][:, :M]
    assert v.shape == (1, M, 64) and torch.equal(v, ref)
