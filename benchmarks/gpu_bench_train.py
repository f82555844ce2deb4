"""One full-size ContextGen training step (SFT, then DPO) on random weights: step time and peak GPU memory.

The FLUX.1-Kontext transformer (19 + 38 blocks, random weights, bf16, frozen) gets the trained LoRA of
`ctxgen.train.lora.add_policy` (float32, R21 targets); the step is training's own code: `model_call` with
gradients (CLA/ICA masks, R18), the T2 / T4 losses, AdamW, gradient clipping, gradient checkpointing. The input
is the 768^2, three-reference scenario of gpu_bench.py (S = 8,192, T = 512) with random latents, so no VAE or
text encoder is loaded; the measured peak is compared with the transformer's share of `--dry-run`'s estimate.

  python3 benchmarks/gpu_bench_train.py            # one GPU, about 2 minutes (H100/H200)
  python3 benchmarks/gpu_bench_train.py --tiny     # the same code on CPU at toy size, float32 (seconds)

From gpu_bench.py: `from gpu_bench_train import run_train_bench; result["train"] = run_train_bench(device)`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (FULL_ARCH, FULL_SCENARIOS, TINY_ARCH, TINY_SCENARIOS, build_transformer, free,  # noqa: E402
                          scene_plan, sync)
from ctxgen.sampling.loop import model_call  # noqa: E402
from ctxgen.sampling.processors import install_processors, kernel_masks  # noqa: E402
from ctxgen.sequence.masks import block_schedule  # noqa: E402
from ctxgen.train import lora  # noqa: E402
from ctxgen.train.losses import dpo_loss, noisy, sft_loss, velocity_target  # noqa: E402
from ctxgen.train.step import adapters_disabled  # noqa: E402

TRANSFORMER_PARTS = ("frozen transformer", "LoRA weights (float32)", "LoRA gradients (float32)",
                     "optimizer state (adamw)", "activations kept for backward", "DPO reference forward (2 samples)")


def _inputs(model, tokens, masks, arch: dict, device, dtype, seed: int):
    """A velocity function over random conditioning, and random clean latents (1, M, 64)."""
    gen = torch.Generator().manual_seed(seed)
    m, t = tokens.main_len, tokens.text_len

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    context = randn(1, tokens.seq_len - t - m, arch["in_channels"])  # (1, M + sum L_n, 64): layout, refs
    call = model_call(model, context, randn(1, t, arch["joint_attention_dim"]), randn(1, arch["pooled_projection_dim"]),
                      torch.zeros(t, 3, device=device), torch.from_numpy(tokens.ids).to(device),
                      kernel_masks(masks, device, dtype, "sdpa"), 1.0)
    return call, randn(1, m, arch["in_channels"]).float(), randn(1, m, arch["in_channels"]).float()


def _step(model, params, opt, call, x0, x1, method: str, device, dtype) -> float:
    """One optimizer step on one example; returns the loss."""
    t = torch.tensor([0.6], device=device)
    if method == "dpo":
        x0, x1 = torch.cat([x0, x0.flip(1)]), torch.cat([x1, x1])  # (2, M, 64): preferred, rejected
    xt, u = noisy(x0, x1, t), velocity_target(x0, x1)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        v = call(xt, t)  # (B, M, 64)
        if method == "dpo":
            with torch.no_grad(), adapters_disabled(model):
                v_ref = call(xt, t)
            loss = dpo_loss(v, v_ref, u, 1250.0).loss
        else:
            loss = sft_loss(v, u)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 0.5)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def _expected(method: str, rank: int, checkpointing: bool) -> dict:
    """The transformer's share of the --dry-run estimate for this step (same scenario, real config)."""
    from ctxgen.train.config_schema import models
    from ctxgen.train.estimate import estimate

    doc = models().config.model_validate({"data": {"shards": "-"}, "train": {"gradient_checkpointing": checkpointing},
                                          "lora": {"rank": rank}, "dpo": {"rank": rank}})
    cfg = SimpleNamespace(doc=doc, base="black-forest-labs/FLUX.1-Kontext-dev", rank=rank, method=method,
                          text_cache=None, init_adapter="sft")
    parts = estimate(cfg, 3).parts
    return {"estimate_bytes": sum(v for k, v in parts.items() if k in TRANSFORMER_PARTS), "estimate_parts": parts}


def run_train_bench(device: torch.device, tiny: bool = False, rank: int = 512, dpo_rank: int = 256, steps: int = 3,
                    checkpointing: bool = True, seed: int = 0) -> dict:
    """Time one SFT and one DPO training step at full size (or toy size with `tiny`); returns the numbers."""
    arch, scenario = (TINY_ARCH, TINY_SCENARIOS[0]) if tiny else (FULL_ARCH, FULL_SCENARIOS[0])
    dtype = torch.float32 if tiny else torch.bfloat16
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0  # another benchmark's model
    start = time.perf_counter()
    model = build_transformer(arch, device, dtype, seed)
    install_processors(model, block_schedule(arch["num_layers"], arch["num_single_layers"]))
    if checkpointing:
        model.enable_gradient_checkpointing()
    tokens, masks = scene_plan(scenario)
    out = {"scenario": scenario.name, "seq_len": tokens.seq_len, "dtype": str(dtype).removeprefix("torch."),
           "checkpointing": checkpointing, "build_s": time.perf_counter() - start, "rows": []}
    names = lora.target_modules(model, "r21")
    for method, r in (("sft", rank), ("dpo", dpo_rank)):
        row = {"method": method, "rank": r}
        try:
            params = lora.add_policy(model, r, float(r), "gaussian", names, seed)
            opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
            call, x0, x1 = _inputs(model, tokens, masks, arch, device, dtype, seed)
            times = []
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for _ in range(steps):
                sync(device)
                t0 = time.perf_counter()
                row["loss"] = _step(model, params, opt, call, x0, x1, method, device, dtype)
                sync(device)
                times.append(time.perf_counter() - t0)
            row.update(first_step_s=times[0], step_s=sorted(times[1:] or times)[len(times[1:] or times) // 2],
                       trained_params=sum(p.numel() for p in params))
            if device.type == "cuda":
                row["peak_bytes"] = int(torch.cuda.max_memory_allocated(device)) - before
            if not tiny:
                row.update(_expected(method, r, checkpointing))
        except Exception as exc:  # noqa: BLE001 - report OOM and go on
            row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        finally:
            model.delete_adapters(lora.POLICY)
            opt = params = call = None
            free(device)
        out["rows"].append(row)
        print(f"  train {method} rank {r}: {row}", file=sys.stderr)
    return out


def markdown(result: dict) -> str:
    lines = [f"training step, {result['scenario']} (S = {result['seq_len']}), {result['dtype']}, gradient "
             f"checkpointing {'on' if result['checkpointing'] else 'off'}",
             "", "| method | LoRA rank | step s | first step s | peak GB | estimate GB |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        def gb(key):
            return f"{r[key] / 1e9:.2f}" if r.get(key) else "-"
        step = f"{r['step_s']:.2f}" if "step_s" in r else r.get("error", "-")
        first = f"{r['first_step_s']:.2f}" if "first_step_s" in r else "-"
        cells = [r["method"], str(r["rank"]), step, first, gb("peak_bytes"), gb("estimate_bytes")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    from diffusers.utils import logging as diffusers_logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="toy architecture on CPU in float32")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rank", type=int, default=None, help="SFT LoRA rank (512; 4 with --tiny)")
    parser.add_argument("--dpo-rank", type=int, default=None, help="DPO LoRA rank (256; 4 with --tiny)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--no-checkpointing", action="store_true")
    args = parser.parse_args(argv)
    diffusers_logging.set_verbosity_error()
    if not args.tiny and not torch.cuda.is_available():
        sys.exit("gpu_bench_train: CUDA is not available; run with --tiny for the CPU toy version")
    device = torch.device("cpu" if args.tiny else args.device)
    result = run_train_bench(device, args.tiny, args.rank or (4 if args.tiny else 512),
                             args.dpo_rank or (4 if args.tiny else 256), args.steps, not args.no_checkpointing)
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
