"""`ctxgen dataset construct`: per-item overhead outside the models, and the GPU-hours to build 10K records.

Part 1 runs the basic and the flexible path on tiny models (CPU) over N prompts and splits every item's time into
the time spent inside model calls (pipelines, detector, segmenter, embedder: timed by wrapping them) and the rest
(I/O, decoding, crops, masks, filtering, keys, manifests, item writes): the per-item overhead. It also times a
re-run (every item skipped by its key) and the shard writing.

Part 2 estimates the GPU-hours for 10K records with the real models from the published step counts (D3, D4) and a
per-step time model of the FLUX transformer: 2 x 11.9e9 FLOPs per token (linear layers) + 4 x S^2 x 3072 x 57
(attention), at an effective throughput (default 400 TFLOP/s: ~40 % of an H100 SXM's 989 dense bf16 TFLOP/s;
`--step-s-8192 X` calibrates it from a measured step at S = 8,192 tokens, e.g. the 768² row of
`benchmarks/gpu_bench.py`). Yields (records kept per prompt) and instances per scene are assumptions: flags.

  python3 benchmarks/bench_construct.py --n 8
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PARAMS, WIDTH, LAYERS, TEXT = 11.9e9, 3072, 57, 512
MODEL_TIME: dict[str, float] = defaultdict(float)
LOAD_TIME: dict[str, float] = defaultdict(float)


def step_flops(tokens: int) -> float:
    """FLOPs of one FLUX transformer forward over `tokens` (text + image + context) tokens."""
    return 2 * PARAMS * tokens + 4 * tokens ** 2 * WIDTH * LAYERS


class Timed:
    """A model proxy adding the time of every call to MODEL_TIME[stage]."""

    def __init__(self, inner, stage: str):
        self._inner, self._stage = inner, stage

    def _wrap(self, fn):
        def call(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                MODEL_TIME[self._stage] += time.perf_counter() - t0
        return call

    def __call__(self, *a, **k):
        return self._wrap(self._inner)(*a, **k)

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        return self._wrap(value) if name in ("detect", "segment", "patch_features", "find", "align") else value


def instrument() -> None:
    from ctxgen.dataset.construct import models

    original = models.StageModels.get

    def get(self, role):
        t0, fresh = time.perf_counter(), role not in self._loaded
        value = original(self, role)
        if fresh:
            LOAD_TIME[self._stage_name] += time.perf_counter() - t0
        return None if value is None else Timed(value, self._stage_name)

    models.StageModels.get = get
    from ctxgen.dataset.construct import runner

    init = runner.ItemRunner.__init__

    def runner_init(self, cfg, run, stage, device):
        init(self, cfg, run, stage, device)
        if self.ctx.models is not None:
            self.ctx.models._stage_name = stage

    runner.ItemRunner.__init__ = runner_init


def prompt_file(folder: Path, n: int, flexible: bool) -> None:
    nouns = ["woman", "dog", "man", "bench", "ball", "cup", "cat", "chair"]
    if flexible:
        rows = [{"prompt": f"A {nouns[i % 8]} next to a {nouns[(i + 1) % 8]}", "instance": [nouns[i % 8],
                 nouns[(i + 1) % 8]], "instance_prompt": [f"a {nouns[i % 8]}", f"a {nouns[(i + 1) % 8]}"]}
                for i in range(n)]
    else:
        rows = [{"prompt": "A park with " + ", ".join(nouns[(i + k) % 8] for k in range(5)),
                 "nouns": [nouns[(i + k) % 8] for k in range(5)] + ["man"]} for i in range(n)]
    (folder / ("composite.json" if flexible else "prompts.json")).write_text(json.dumps(rows))


def overhead(n: int, flexible: bool) -> None:
    from ctxgen.dataset.construct.config import load_config
    from ctxgen.dataset.construct.pipeline import run_stage

    examples = Path(__file__).resolve().parents[1] / "examples" / "construct"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        name = "tiny-composite.construct" if flexible else "tiny.construct"
        shutil.copy(examples / name, root / name)
        prompt_file(root, n, flexible)
        cfg = load_config(root / name)
        MODEL_TIME.clear()
        LOAD_TIME.clear()
        print(f"\n{cfg.path} path, {n} prompts, tiny models, CPU")
        print("| stage | items | total s | model loads s (once per worker) | in model calls s | overhead ms/item "
              "| re-run (skip) ms/item |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for stage in cfg.stages:
            t0 = time.perf_counter()
            s = run_stage(cfg, root / "run", stage, device="cpu")
            total = time.perf_counter() - t0
            items = max(1, s.counts["ok"])
            shards = 0.0
            if s.dataset is not None:
                t1 = time.perf_counter()
                shutil.rmtree(root / "run" / cfg.output.folder)
                from ctxgen.dataset.construct.records import write_dataset

                write_dataset(root / "run", cfg)
                shards = time.perf_counter() - t1
                total -= shards
            t2 = time.perf_counter()
            run_stage(cfg, root / "run", stage, device="cpu")
            rerun = (time.perf_counter() - t2) / items
            inside, load = MODEL_TIME.get(stage, 0.0), LOAD_TIME.get(stage, 0.0)
            print(f"| {stage} | {s.counts['ok']} | {total:.2f} | {load:.2f} | {inside:.2f} | "
                  f"{1000 * (total - inside - load) / items:.1f} | {1000 * rerun:.1f} |")
            if shards:
                print(f"| (shards: {s.dataset.records} records) | | {shards:.2f} | | | "
                      f"{1000 * shards / max(1, s.dataset.records):.1f} per record | |")


def gpu_hours(args) -> None:
    tflops = args.tflops * 1e12
    if args.step_s_8192:
        tflops = step_flops(8192) / args.step_s_8192
    step = lambda image_tokens: step_flops(image_tokens + TEXT) / tflops  # noqa: E731
    fixed = args.per_image_s  # T5 + CLIP + VAE per generated image (and detector/segmenter calls)
    t2i = 8 * step(4096) + fixed
    repaint = 15 * step(4096 + 4096) + fixed  # target ~1024² + the crop resized to ~1024² as context
    basic_prompt = t2i + args.instances * (repaint + 2 * args.vision_s) + args.vision_s
    refs = 12 * step(2304) + fixed + 2 * args.vision_s  # 768² references, cut out and masked
    compose = 28 * step(1024 + 2 * 1024) + fixed  # 512² target + two 512² references as context
    flex_prompt = 2 * refs + compose + 6 * args.vision_s
    print(f"\nGPU-hours for 10,000 records ({tflops / 1e12:.0f} effective TFLOP/s, per image {fixed} s for text "
          f"encoders + VAE, {args.vision_s} s per detector/segmenter/embedder call)")
    print("| path | per-step s (t2i / edit) | GPU-s per prompt | yield | prompts for 10K | GPU-hours |")
    print("|---|---|---:|---:|---:|---:|")
    for name, per, first, second, keep in (
            ("basic/complex", basic_prompt, step(4096), step(8192), args.yield_basic),
            ("flexible", flex_prompt, step(2304), step(3072), args.yield_flexible)):
        prompts = 10_000 / keep
        print(f"| {name} | {first:.3f} / {second:.3f} | {per:.1f} | {keep:.2f} | {prompts:,.0f} | "
              f"{per * prompts / 3600:,.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8, help="prompts per path for the overhead run")
    ap.add_argument("--tflops", type=float, default=400.0, help="effective bf16 TFLOP/s of one GPU")
    ap.add_argument("--step-s-8192", type=float, default=None, help="measured s per FLUX step at S = 8,192")
    ap.add_argument("--per-image-s", type=float, default=0.3, help="text encoders + VAE per generated image")
    ap.add_argument("--vision-s", type=float, default=0.05, help="one detector / SAM / DINOv2 call")
    ap.add_argument("--instances", type=float, default=5.0, help="detected instances repainted per scene")
    ap.add_argument("--yield-basic", type=float, default=0.5, help="records kept per prompt, basic path")
    ap.add_argument("--yield-flexible", type=float, default=0.3, help="records kept per prompt, flexible path")
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    if not args.skip_overhead:
        import logging

        logging.disable(logging.WARNING)
        instrument()
        overhead(args.n, flexible=False)
        overhead(args.n, flexible=True)
    gpu_hours(args)


if __name__ == "__main__":
    main()
