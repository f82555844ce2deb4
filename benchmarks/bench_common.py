"""Shared parts of the GPU and CPU benchmarks: architectures, scenarios, random builders, timing."""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ctxgen.sequence.masks import build_masks  # noqa: E402
from ctxgen.models.tiny import TRANSFORMER_CONFIG, lora_target_modules  # noqa: E402
from ctxgen.sequence.tokens import build_sequence  # noqa: E402


FULL_ARCH = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                 num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
                 axes_dims_rope=(16, 56, 56))  # fmt: skip
TINY_ARCH = dict(TRANSFORMER_CONFIG)  # the tiny model's architecture, defined once in ctxgen.models.tiny
CONFIGS = (("published", "eager"), ("published", "compiled"), ("ctxgen-sdpa", "eager"), ("ctxgen-flex", "eager"),
           ("ctxgen-sdpa", "compiled"), ("ctxgen-flex", "compiled"))  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    """A ContextGen-shaped input: square canvas, n square references of `ref_side` tokens, T text tokens."""

    name: str
    size: int
    n_refs: int
    ref_side: int
    text_len: int


FULL_SCENARIOS = (Scenario("768-3refs", 768, 3, 32, 512), Scenario("1024-6refs", 1024, 6, 48, 512))
TINY_SCENARIOS = (Scenario("tiny-3refs", 128, 3, 4, 8), Scenario("tiny-6refs", 160, 6, 4, 8))


def ellipse_mask(side: int) -> np.ndarray:
    """bool (side, side): the inscribed ellipse, a typical cut-out."""
    yy, xx = np.indices((side, side))  # (2, side, side)
    r = (side - 1) / 2
    return ((yy - r) / (r + 0.5)) ** 2 + ((xx - r) / (r + 0.5)) ** 2 <= 1


def scene_plan(scn: Scenario):
    """Token layout and masks (R13-R17) for n overlapping boxes along the diagonal, 45 % of the canvas side."""
    grid = scn.size // 16
    side = int(0.45 * grid)
    starts = np.linspace(0, grid - side, scn.n_refs).astype(int)
    boxes = [(int(s), int(s), int(s) + side, int(s) + side) for s in starts]
    tokens = build_sequence((scn.size, scn.size), scn.text_len, [(scn.ref_side, scn.ref_side)] * scn.n_refs)
    return tokens, build_masks(tokens, [ellipse_mask(scn.ref_side)] * scn.n_refs, boxes)


def randomize(module: torch.nn.Module, seed: int, std: float = 0.02) -> None:
    """Every parameter random, never zero: N(0, std), norm weights 1 + N(0, std)."""
    gen = torch.Generator(device=next(module.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.normal_(0.0, std, generator=gen)
            if p.ndim == 1 and "norm" in name and name.endswith("weight"):
                p.add_(1.0)


def build_transformer(arch: dict, device: torch.device, dtype: torch.dtype, seed: int):
    """FluxTransformer2DModel built on the meta device, materialised on `device` in `dtype`, random weights."""
    from diffusers import FluxTransformer2DModel

    with torch.device("meta"):
        model = FluxTransformer2DModel(**arch)
    model = model.to(dtype=dtype).to_empty(device=device)
    randomize(model, seed)
    return model.eval().requires_grad_(False)


def add_lora(model, rank: int, device: torch.device, seed: int) -> None:
    """A random rank-`rank` LoRA (alpha = rank) on the R21 targets as separate peft layers (the published form)."""
    from peft import LoraConfig

    targets = lora_target_modules(model.config.num_layers, model.config.num_single_layers)
    with torch.device(device):
        model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights=False))
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_" in name:
                p.normal_(0.0, 0.02, generator=gen)
    model.requires_grad_(False)


def fuse_lora(model) -> None:
    """Merge the LoRA into the base weights and drop the peft layers (what ctxgen loads, R21)."""
    model.fuse_lora(lora_scale=1.0)
    model.unload_lora()


def step_inputs(tokens, arch: dict, device: torch.device, dtype: torch.dtype, seed: int) -> dict:
    """Transformer keyword inputs for one step: [main | layout | refs] latents, T5 states, ids (R13, R14)."""
    gen = torch.Generator().manual_seed(seed)
    n_img, t = tokens.seq_len - tokens.text_len, tokens.text_len

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    return dict(
        hidden_states=randn(1, n_img, arch["in_channels"]),  # (1, S - T, 64)
        encoder_hidden_states=randn(1, t, arch["joint_attention_dim"]),  # (1, T, 4096)
        pooled_projections=randn(1, arch["pooled_projection_dim"]),  # (1, 768)
        timestep=torch.tensor([0.7], device=device, dtype=dtype),
        guidance=torch.tensor([3.5], device=device, dtype=torch.float32),
        txt_ids=torch.zeros(t, 3, device=device),  # (T, 3)
        img_ids=torch.from_numpy(tokens.ids).to(device),  # (S - T, 3) float32
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn, device: torch.device, warmup: int, reps: int) -> tuple[float, float, int | None]:
    """(first call s, median steady ms, peak bytes over the steady calls on CUDA)."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t1 = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t1))
    peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    return first, float(np.median(times)), peak


def set_compiled(model, on: bool, backend: str) -> None:
    """Regional compilation of the repeated blocks (diffusers' compile_repeated_blocks), or back to eager."""
    torch._dynamo.reset()
    if on:
        model.compile_repeated_blocks(backend=backend, dynamic=False)
        return
    for block in list(model.transformer_blocks) + list(model.single_transformer_blocks):
        block._compiled_call_impl = None


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
