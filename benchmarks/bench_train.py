"""Training speed on the tiny model (CPU) and `--dry-run` memory estimates for the real one.

Part 1: SFT steps on the tiny model over a synthetic dataset; per step, the time outside the transformer's
forward, backward and optimizer step (reading records, layout and masks = "data"; VAE and prompt encoding =
"encode") and its share, with and without the prefetch thread and the latent cache, and with cached text
embeddings (CLIP and T5 unloaded: the T5 calls during training are counted). Part 2: the estimate of one
training step's GPU memory for FLUX.1-Kontext at 768^2 with three references for the documented configurations.

  python3 benchmarks/bench_train.py                    # both parts, about a minute
  python3 benchmarks/bench_train.py --steps 40 --threads 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from tests.train_helpers import write_config  # noqa: E402

VARIANTS = {  # name -> config sections
    "no latent cache": {"train": {"latent_cache_mb": 0}},
    "latent cache (default)": {},
    "latent cache + prefetch thread": {"train": {"prefetch": "on"}},
    "default + text cache (T5 unloaded)": {"data": {"text_cache": "text-cache"}},
}
MEMORY_CONFIGS = {  # name -> (method, config sections on top of the published defaults)
    "SFT, rank 512, AdamW, checkpointing (80 GB target)": ("sft", {}),
    "SFT, rank 512, AdamW, no checkpointing": ("sft", {"train": {"gradient_checkpointing": False}}),
    "DPO, rank 256 over fused SFT, AdamW, checkpointing": ("dpo", {}),
    "<=24 GB: NF4 base, 8-bit AdamW, text cache, rank 128": (
        "sft", {"model": {"quantize": "nf4"}, "optimizer": {"name": "adamw8bit"}, "lora": {"rank": 128},
                "data": {"text_cache": "cache"}}),
    "NF4 base, 8-bit AdamW, text cache, rank 256": (
        "sft", {"model": {"quantize": "nf4"}, "optimizer": {"name": "adamw8bit"}, "lora": {"rank": 256},
                "data": {"text_cache": "cache"}}),
    "NF4 base, 8-bit AdamW, text cache, rank 512": (
        "sft", {"model": {"quantize": "nf4"}, "optimizer": {"name": "adamw8bit"}, "data": {"text_cache": "cache"}}),
}


def tiny_speed(root: Path, steps: int, warmup: int, canvas: int) -> list[dict]:
    """Per variant: mean step time, data and encode time, their share, T5 calls during training."""
    from ctxgen.train.config import load_config
    from ctxgen.train.loop import Trainer, open_session

    rows = []
    for i, (name, sections) in enumerate(VARIANTS.items()):
        base = {"data": {"canvas": [canvas, canvas], "reference_area": canvas // 2, "text_len": 32,
                         "mix": {"basic": 15, "composite": 1}},
                "train": {"max_steps": steps + warmup, "batch": 4}, "checkpoint": {"every": 10_000}}
        for key, value in sections.items():
            base[key] = {**base.get(key, {}), **value}
        cfg = load_config(write_config(root, f"v{i}.yaml", **base), "sft")
        session = open_session(cfg, root / f"run{i}")
        trainer = Trainer(session)
        for _ in range(warmup):
            trainer.train_step()
        encoded_before = session.text.encoded
        data = enc = 0.0
        t0 = time.perf_counter()
        for _ in range(steps):
            stats = trainer.train_step()
            data, enc = data + stats.data_s, enc + stats.encode_s
        wall = (time.perf_counter() - t0) / steps
        trainer.prefetch.close()
        outside = (data + enc) / steps
        rows.append({"variant": name, "step_ms": 1e3 * wall, "data_ms": 1e3 * data / steps,
                     "encode_ms": 1e3 * enc / steps, "outside_share": outside / wall if not trainer.prefetch.pool
                     else None, "t5_calls": session.text.encoded - encoded_before,
                     "latent_hits": session.latents.hits, "latent_misses": session.latents.misses})
        print(f"  {rows[-1]}", file=sys.stderr)
    return rows


def memory_estimates(root: Path, refs: int) -> list[dict]:
    from ctxgen.train.config import load_config
    from ctxgen.train.estimate import estimate

    rows = []
    for name, (method, sections) in MEMORY_CONFIGS.items():
        path = root / "real.yaml"
        import yaml

        doc = {"model": {"base": "contextgen"}, "data": {"shards": "data"}}
        for key, value in sections.items():
            doc[key] = {**doc.get(key, {}), **value}
        path.write_text(yaml.safe_dump(doc))
        cfg = load_config(path, "sft")
        if method == "dpo":
            cfg = replace(cfg, method="dpo", init_adapter="sft-adapter")
        est = estimate(cfg, refs)
        rows.append({"config": name, "peak_gb": est.peak / 1e9, "card_gb": est.card / 1e9, "seq_len": est.seq_len,
                     "trainable": est.trainable, "parts_gb": {k: round(v / 1e9, 2) for k, v in est.parts.items()}})
    return rows


def main(argv=None) -> None:
    import torch
    from diffusers.utils import logging as diffusers_logging

    from ctxgen.dataset.synthetic import make_synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per variant (batch 4)")
    parser.add_argument("--warmup", type=int, default=8, help="untimed steps first (one epoch fills the caches)")
    parser.add_argument("--canvas", type=int, default=128, help="training canvas side of the tiny run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--refs", type=int, default=3, help="references per example in the memory estimate")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    diffusers_logging.set_verbosity_error()
    root = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        make_synthetic(root / "data", 32, seed=0, size=256)
        print(f"tiny model, {args.canvas}^2 canvas, batch 4, {args.threads} torch thread(s), {args.steps} steps:")
        print("| variant | step ms | data ms | encode ms | outside share | T5 calls | latent hits/misses |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in tiny_speed(root, args.steps, args.warmup, args.canvas):
            share = "overlapped" if r["outside_share"] is None else f"{100 * r['outside_share']:.0f} %"
            print(f"| {r['variant']} | {r['step_ms']:.1f} | {r['data_ms']:.1f} | {r['encode_ms']:.1f} | {share} | "
                  f"{r['t5_calls']} | {r['latent_hits']}/{r['latent_misses']} |")
        print(f"\n--dry-run memory estimate, FLUX.1-Kontext-dev, 768^2, {args.refs} references, T = 512, one GPU:")
        print("| configuration | peak GB | GPU GB needed | S | trained parameters |")
        print("|---|---:|---:|---:|---:|")
        for r in memory_estimates(root, args.refs):
            print(f"| {r['config']} | {r['peak_gb']:.1f} | {r['card_gb']:.1f} | {r['seq_len']} | {r['trainable']:,} |")
            print(f"|   parts | {r['parts_gb']} | | | |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
