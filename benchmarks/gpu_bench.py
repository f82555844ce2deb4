"""One ContextGen denoising step at full FLUX.1-Kontext size: the published configuration against ctxgen.

The transformer (19 double + 38 single blocks, 24 heads x 128) is built with random weights directly on the
GPU (no download), with a random rank-512 LoRA on the R21 targets. Inputs are ContextGen-shaped: 768^2 with
three 512^2 references (S = 8,192) and 1024^2 with six 768^2 references (S = 22,528), T = 512, masks from
ctxgen's mask builder on elliptic cut-outs. Configurations, each eager and compiled (regional torch.compile):
  published    dense boolean masks to SDPA, unfused LoRA (peft layers), bf16
  ctxgen-sdpa  LoRA fused, additive masks built once per scene
  ctxgen-flex  LoRA fused, FlexAttention BlockMasks built once per scene
plus the attention kernels alone (q, k, v at the step's shape). A failing configuration (OOM, compile error)
is reported and skipped. Prints markdown tables; writes JSON to --out (default $OUT/gpu_bench.json).

  python3 benchmarks/gpu_bench.py                 # H100, about 5 minutes
  python3 benchmarks/gpu_bench.py --tiny          # same code on CPU at toy scale, float32 (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ctxgen.sampling.processors import bool_masks, install_processors, sdpa_masks  # noqa: E402
from ctxgen.sampling.flex import compiled_flex, flex_available, flex_masks  # noqa: E402
from ctxgen.sequence.masks import block_schedule  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (CONFIGS, FULL_ARCH, FULL_SCENARIOS, TINY_ARCH, TINY_SCENARIOS, Scenario, add_lora,  # noqa: E402,F401
                          build_transformer, ellipse_mask, free, fuse_lora, randomize, scene_plan, set_compiled,
                          step_inputs, sync, time_fn)
from gpu_bench_tiers import tier_rows  # noqa: E402


def mask_forms(masks, device: torch.device, dtype: torch.dtype, names) -> tuple[dict, dict]:
    """Each configuration's mask form built once, and its build time in ms."""
    builders = {"published": lambda: bool_masks(masks, device),
                "ctxgen-sdpa": lambda: sdpa_masks(masks, device, dtype),
                "ctxgen-flex": lambda: flex_masks(masks, device)}  # fmt: skip
    forms, ms = {}, {}
    for name in names:
        sync(device)
        t0 = time.perf_counter()
        forms[name] = builders[name]()
        sync(device)
        ms[name] = 1e3 * (time.perf_counter() - t0)
    return forms, ms


def run_config(model, name: str, mode: str, inputs: dict, masks: dict, args, device) -> dict:
    """Time one configuration; errors (OOM, compile failures) are recorded, not raised."""
    row = {"config": name, "mode": mode}

    def step():
        with torch.inference_mode():
            return model(**inputs, joint_attention_kwargs={"ctxgen_masks": masks}, return_dict=False)[0]

    try:
        set_compiled(model, mode == "compiled", args.compile_backend)
        first, ms, peak = time_fn(step, device, args.warmup, args.reps)
        row.update(step_ms=ms, peak_bytes=peak, first_s=first)
        if mode == "compiled":
            row["compile_s"] = max(first - ms / 1e3, 0.0)
    except Exception as exc:  # noqa: BLE001 - one failing configuration must not stop the benchmark
        row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    finally:
        set_compiled(model, False, args.compile_backend)
        free(device)
    step_ms, first_s = row.get("step_ms", float("nan")), row.get("first_s", 0.0)
    error = row.get("error", "")
    print(f"  {name:12s} {mode:8s} {step_ms:10.2f} ms (first call {first_s:.1f} s) {error}", file=sys.stderr)
    return row


def attention_rows(plan_masks, forms: dict, arch: dict, seq_len: int, args, device, dtype) -> list[dict]:
    """The kernels alone on q, k, v of the step's shape: one CLA plus one ICA call each."""
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(args.seed)
    h, d = arch["num_attention_heads"], arch["attention_head_dim"]
    qkv = [torch.randn(1, seq_len, h, d, generator=gen).to(device=device, dtype=dtype) for _ in range(3)]
    q, k, v = (x.transpose(1, 2) for x in qkv)  # (1, H, S, D) views, laid out as the processors pass them
    flex = compiled_flex(device.type, args.flex_backend)
    kernels = {
        "published": lambda m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        "ctxgen-sdpa": lambda m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        "ctxgen-flex": lambda m: flex(q, k, v, block_mask=m),
        "no-mask (not ContextGen)": None,
    }
    rows = []
    for name, kernel in kernels.items():
        if kernel is None:
            fn = lambda: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
        else:
            fn = lambda kernel=kernel, name=name: (kernel(forms[name]["cla"]), kernel(forms[name]["ica"]))  # noqa: E731
        try:
            _, ms, _ = time_fn(fn, device, args.warmup, args.reps)
            rows.append({"kernel": name, "ms": ms})
        except Exception as exc:  # noqa: BLE001
            rows.append({"kernel": name, "error": f"{type(exc).__name__}: {str(exc).strip()[:200]}"})
        free(device)
    return rows


def agreement(model, inputs: dict, forms: dict) -> dict:
    """Largest |flex - sdpa| over one eager step's output, and the output's scale (a correctness check at scale)."""
    outs = {}
    try:
        for name in ("ctxgen-sdpa", "ctxgen-flex"):
            with torch.inference_mode():
                out = model(**inputs, joint_attention_kwargs={"ctxgen_masks": forms[name]}, return_dict=False)[0]
            outs[name] = out.float()  # (1, S - T, 64)
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {str(exc).strip()[:200]}"}
    diff = (outs["ctxgen-flex"] - outs["ctxgen-sdpa"]).abs().max().item()
    return {"max_abs_diff": diff, "max_abs_output": outs["ctxgen-sdpa"].abs().max().item()}


def add_ratios(rows: list[dict], attention: dict[str, list[dict]]) -> None:
    """Speed-up and memory ratio of every row against the published configuration of its scenario."""
    for row in rows:
        same = {r["mode"]: r for r in rows if r["scenario"] == row["scenario"] and r["config"] == "published"}
        for mode, ref in same.items():
            if "step_ms" in row and "step_ms" in ref:
                row[f"speedup_vs_published_{mode}"] = ref["step_ms"] / row["step_ms"]
        ref = same.get(row["mode"])
        if ref and row.get("peak_bytes") and ref.get("peak_bytes"):
            row["memory_vs_published"] = row["peak_bytes"] / ref["peak_bytes"]
    for kernels in attention.values():
        ref = next((k["ms"] for k in kernels if k["kernel"] == "published" and "ms" in k), None)
        for k in kernels:
            if ref and "ms" in k:
                k["speedup_vs_published"] = ref / k["ms"]


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(result: dict) -> str:
    """The step table and the attention table in markdown."""
    lines = ["| scenario | config | mode | step ms | x published eager | x published same mode | peak GB | compile s |",
             "|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in result["steps"]:
        peak = None if r.get("peak_bytes") is None else r["peak_bytes"] / 1e9
        cells = [r["scenario"], r["config"], r["mode"], _fmt(r.get("step_ms"), ".1f"),
                 _fmt(r.get("speedup_vs_published_eager"), ".2f"),
                 _fmt(r.get(f"speedup_vs_published_{r['mode']}"), ".2f"), _fmt(peak, ".2f"),
                 _fmt(r.get("compile_s"), ".1f")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |" + (f" {r['error']}" if "error" in r else ""))
    lines += ["", "| scenario | attention kernel (cla + ica) | ms | x published |", "|---|---|---:|---:|"]
    for scenario, kernels in result["attention"].items():
        for k in kernels:
            cells = [scenario, k["kernel"], _fmt(k.get("ms"), ".2f"), _fmt(k.get("speedup_vs_published"), ".2f")]
            lines.append("| " + " | ".join(cells) + " |" + (f" {k['error']}" if "error" in k else ""))
    if "tiers" in result:
        lines += ["", f"| memory tier ({result['tiers']['scenario']}, one scene render) | peak GB |", "|---|---:|"]
        for r in result["tiers"]["rows"]:
            peak = None if r.get("peak_bytes") is None else r["peak_bytes"] / 1e9
            lines.append(f"| {r['tier']} | {_fmt(peak, '.2f')} |" + (f" {r['error']}" if "error" in r else ""))
    for scenario, check in result["flex_vs_sdpa"].items():
        lines.append(f"\n{scenario}: max |flex - sdpa| = {check.get('max_abs_diff', check.get('error'))} "
                     f"(outputs up to {check.get('max_abs_output', '-')})")
    return "\n".join(lines)


def write_json(path: Path, result: dict) -> None:
    """Atomic write: a temp file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        json.dump(result, f, indent=2)
    os.replace(f.name, path)


def run(args, arch: dict, scenarios, device: torch.device, dtype: torch.dtype) -> dict:
    """Build once, then every scenario x configuration; published runs first, then the LoRA is fused."""
    scenarios = [s for s in scenarios if s.name in args.scenarios or not args.scenarios]
    modes = ("eager",) if args.no_compile else ("eager", "compiled")
    names = ["published", "ctxgen-sdpa"] + (["ctxgen-flex"] if flex_available() else [])
    start = time.perf_counter()
    model = build_transformer(arch, device, dtype, args.seed)
    install_processors(model, block_schedule(arch["num_layers"], arch["num_single_layers"]))
    add_lora(model, args.rank, device, args.seed + 1)
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "dtype": str(dtype).removeprefix("torch."), "lora_rank": args.rank,
              "arch": {k: list(v) if isinstance(v, tuple) else v for k, v in arch.items()},
              "build_s": time.perf_counter() - start, "steps": [], "attention": {}, "mask_build_ms": {},
              "mask_density": {}, "seq_len": {}, "flex_vs_sdpa": {}}  # fmt: skip
    for phase in ("published", "ctxgen"):
        if phase == "ctxgen":
            fuse_lora(model)
        for scn in scenarios:
            tokens, masks = scene_plan(scn)
            inputs = step_inputs(tokens, arch, device, dtype, args.seed)
            wanted = [n for n in names if (n == "published") == (phase == "published")]
            forms, build_ms = mask_forms(masks, device, dtype, wanted)
            result["seq_len"][scn.name] = tokens.seq_len
            result["mask_density"][scn.name] = {k: masks.density(k) for k in ("cla", "ica")}
            result["mask_build_ms"].setdefault(scn.name, {}).update(build_ms)
            print(f"{scn.name}: S={tokens.seq_len} ({phase})", file=sys.stderr)
            for name, mode in CONFIGS:
                if name not in wanted or mode not in modes:
                    continue
                if time.perf_counter() - start > args.budget_s:
                    result["steps"].append({"scenario": scn.name, "config": name, "mode": mode,
                                            "error": f"skipped: past the {args.budget_s:.0f} s budget"})
                    continue
                row = run_config(model, name, mode, inputs, forms[name], args, device)
                result["steps"].append({"scenario": scn.name, **row})
            if phase == "ctxgen" and "ctxgen-flex" in forms:
                result["flex_vs_sdpa"][scn.name] = agreement(model, inputs, forms)
            if phase == "ctxgen" and args.tiers and "tiers" not in result and "ctxgen-flex" in forms:
                result["tiers"] = {"scenario": scn.name, "rows": tier_rows(model, scn, inputs, forms["ctxgen-flex"],
                                                                           args, device, dtype)}  # fmt: skip
            if phase == "ctxgen":
                all_forms = {**forms, **mask_forms(masks, device, dtype, ["published"])[0]}
                rows = attention_rows(masks, all_forms, arch, tokens.seq_len, args, device, dtype)
                result["attention"][scn.name] = rows
            del forms, inputs
            free(device)
    add_ratios(result["steps"], result["attention"])
    result["total_s"] = time.perf_counter() - start
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="toy architecture on CPU in float32 (tests)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scenarios", nargs="*", default=[], help="scenario names (default: all)")
    parser.add_argument("--rank", type=int, default=None, help="LoRA rank (default 512; 4 with --tiny)")
    parser.add_argument("--warmup", type=int, default=None, help="calls after the first (default 1; 0 with --tiny)")
    parser.add_argument("--reps", type=int, default=None, help="timed calls (default 3; 1 with --tiny)")
    parser.add_argument("--no-compile", action="store_true", help="eager configurations only")
    parser.add_argument("--compile-backend", default=None, help="torch.compile backend (inductor; eager with --tiny)")
    parser.add_argument("--flex-backend", default="inductor", help="backend compiling the flex kernel")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip configurations after this many seconds")
    parser.add_argument("--tiers", action="store_true", help="also the render peak of each --memory tier")
    parser.add_argument("--train", action="store_true", help="also one SFT and one DPO training step (gpu_bench_train)")
    parser.add_argument("--seed", type=int, default=0)
    default_out = Path(os.environ["OUT"]) / "gpu_bench.json" if os.environ.get("OUT") else None
    parser.add_argument("--out", type=Path, default=default_out, help="JSON results (default $OUT/gpu_bench.json)")
    args = parser.parse_args(argv)
    args.rank = args.rank or (4 if args.tiny else 512)
    args.warmup = args.warmup if args.warmup is not None else (0 if args.tiny else 1)
    args.reps = args.reps or (1 if args.tiny else 3)
    args.compile_backend = args.compile_backend or ("eager" if args.tiny else "inductor")
    return args


def main(argv=None) -> dict:
    from diffusers.utils import logging as diffusers_logging

    args = parse_args(argv)
    diffusers_logging.set_verbosity_error()  # the meta-device build's dtype cast note
    if not args.tiny and args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_bench: CUDA is not available; run with --tiny for the CPU toy version")
    device = torch.device("cpu" if args.tiny else args.device)
    dtype = torch.float32 if args.tiny else torch.bfloat16
    if args.tiny:
        result = run(args, TINY_ARCH, TINY_SCENARIOS, device, dtype)
    else:
        result = run(args, FULL_ARCH, FULL_SCENARIOS, device, dtype)
    print(markdown(result))
    if args.train:
        from gpu_bench_train import markdown as train_markdown
        from gpu_bench_train import run_train_bench

        result["train"] = run_train_bench(device, tiny=args.tiny)  # its peak excludes memory held by the above
        print(train_markdown(result["train"]))
    if args.out is not None:
        write_json(args.out, result)
        print(f"results: {args.out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
