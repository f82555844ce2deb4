"""The GPU benchmark's table on CPU: a scaled-down FLUX architecture in float32 on the real ContextGen token
plan (768^2, three 512^2 references, T = 512, S = 8,192), plus the per-scene mask build cost at 1024^2 with
six references (S = 22,528) for each mask form. Always runnable; a few minutes on two cores.

  python3 benchmarks/cpu_bench.py [--no-compile] [--out cpu_bench.json]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_bench as gb  # noqa: E402

CPU_ARCH = dict(gb.FULL_ARCH, num_layers=2, num_single_layers=4, attention_head_dim=32, num_attention_heads=4,
                joint_attention_dim=64, pooled_projection_dim=64, axes_dims_rope=(8, 12, 12))  # fmt: skip
CPU_SCENARIOS = (gb.FULL_SCENARIOS[0],)  # the 768^2 / three references plan at its real size
MASK_SCENARIO = gb.FULL_SCENARIOS[1]  # 1024^2 / six references


def mask_build_times(scn: gb.Scenario, repeats: int = 3) -> dict:
    """Median ms to plan tokens + masks (numpy) and to build each kernel's mask form from them on the CPU."""
    times: dict[str, list[float]] = {"plan (tokens + class masks)": []}
    masks = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        tokens, masks = gb.scene_plan(scn)
        times["plan (tokens + class masks)"].append(1e3 * (time.perf_counter() - t0))
        _, ms = gb.mask_forms(masks, torch.device("cpu"), torch.float32, ["published", "ctxgen-sdpa", "ctxgen-flex"])
        for name, value in ms.items():
            times.setdefault(f"{name} form", []).append(value)
        gb.free(torch.device("cpu"))
    out = {name: statistics.median(v) for name, v in times.items()}
    out["seq_len"] = tokens.seq_len
    out["density"] = {k: masks.density(k) for k in ("cla", "ica")}
    return out


def flex_over_sdpa(result: dict) -> dict:
    """ctxgen-flex time / ctxgen-sdpa time per scenario and mode (steps) and for the kernels alone."""
    out = {}
    for row in result["steps"]:
        if row["config"] == "ctxgen-flex" and "step_ms" in row:
            ref = next((r for r in result["steps"] if r["scenario"] == row["scenario"] and r["mode"] == row["mode"]
                        and r["config"] == "ctxgen-sdpa" and "step_ms" in r), None)  # fmt: skip
            if ref:
                out[f"{row['scenario']} step {row['mode']}"] = row["step_ms"] / ref["step_ms"]
    for scenario, kernels in result["attention"].items():
        ms = {k["kernel"]: k.get("ms") for k in kernels}
        if ms.get("ctxgen-flex") and ms.get("ctxgen-sdpa"):
            out[f"{scenario} attention"] = ms["ctxgen-flex"] / ms["ctxgen-sdpa"]
    return out


def main(argv=None) -> dict:
    from diffusers.utils import logging as diffusers_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    args = gb.parse_args(["--device", "cpu", *argv])
    if args.out is not None and args.out.name == "gpu_bench.json":
        args.out = args.out.with_name("cpu_bench.json")
    if "--rank" not in argv:
        args.rank = 16  # a rank-512 LoRA would dwarf the scaled-down widths
    diffusers_logging.set_verbosity_error()
    torch.manual_seed(0)
    result = gb.run(args, CPU_ARCH, CPU_SCENARIOS, torch.device("cpu"), torch.float32)
    result["threads"] = torch.get_num_threads()
    result["mask_build_1024_6refs_ms"] = mask_build_times(MASK_SCENARIO)
    result["flex_over_sdpa"] = flex_over_sdpa(result)
    print(gb.markdown(result))
    print("\n| 1024^2, six references: mask build | ms |\n|---|---:|")
    for name, value in result["mask_build_1024_6refs_ms"].items():
        if isinstance(value, float):
            print(f"| {name} | {value:.1f} |")
    print("\nflex / sdpa time ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in result["flex_over_sdpa"].items()))
    if args.out is not None:
        gb.write_json(args.out, result)
        print(f"results: {args.out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
