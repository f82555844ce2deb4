"""Dataset throughput: `pack` and `import-imig` records/s on a 2,000-record synthetic tree (1 and N worker
processes), the streaming reader's records/s, and the tiny model's training step for comparison.

    python3 benchmarks/bench_dataset.py [--n 2000] [--workers 2] [--keep DIR]

The inputs are ctxgen's synthetic dataset (256 px targets, 2-4 instances, JPEG targets, PNG/JPEG references)
written once as scene files (`make-synthetic --layout scenes`) and as the IMIG-100K folders (`--layout imig`);
that set-up is not timed. Packing is decode-free (headers, plus the small masks). The training step is a forward +
backward pass of the tiny FLUX transformer (`ctxgen.models.tiny.TRANSFORMER_CONFIG`) on one 256x256 example with
the token counts of a real synthetic record (text 32, main 256, layout 256, references as prepared by R5).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ctxgen.dataset.build import build, plan_jobs  # noqa: E402
from ctxgen.dataset.export import export_record  # noqa: E402
from ctxgen.dataset.imig import import_items, plan_imig  # noqa: E402
from ctxgen.dataset.scenes import pack_items, plan_pack  # noqa: E402
from ctxgen.dataset.shards import DatasetReader  # noqa: E402
from ctxgen.dataset.synthetic import synthetic_record, write_imig_tree  # noqa: E402


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    result = fn()
    took = time.perf_counter() - start
    print(f"{label}: {took:.2f} s", flush=True)
    return took, result


def bench_build(name: str, producer, items, out: Path, workers: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    jobs = plan_jobs(producer, items, {"decode": False}, 250)
    took, summary = timed(f"  {name} --workers {workers}", lambda: build(out, jobs, workers=workers))
    rate = summary.records / took
    print(f"  {name} --workers {workers}: {summary.records} records in {len(summary.shards)} shards, "
          f"{rate:,.0f} records/s", flush=True)
    return rate


def bench_reader(folder: Path, n: int) -> tuple[float, float]:
    reader = DatasetReader(folder)
    stream = reader.stream(seed=0)
    start = time.perf_counter()
    for _ in range(n):
        next(stream)
    raw = n / (time.perf_counter() - start)
    stream = reader.stream(seed=1)
    start = time.perf_counter()
    m = n // 4
    for _ in range(m):
        _, rec = next(stream)
        rec.target.decode()
        for inst in rec.instances:
            inst.image.decode()
            if inst.mask is not None:
                inst.mask.decode_mask()
    decoded = m / (time.perf_counter() - start)
    print(f"  reader: {raw:,.0f} records/s streamed (Record objects, bytes), {decoded:,.0f} records/s with the "
          "target and every reference and mask decoded", flush=True)
    return raw, decoded


def bench_step(folder: Path, steps: int = 5) -> float:
    """Seconds per forward + backward of the tiny transformer on one 256x256 example (CPU)."""
    import torch
    from diffusers import FluxTransformer2DModel

    from ctxgen.dataset.preview import prepare_record
    from ctxgen.models.tiny import TRANSFORMER_CONFIG

    torch.manual_seed(0)
    sp = prepare_record(DatasetReader(folder).record(1), size=(256, 256), text_len=32)
    model = FluxTransformer2DModel(**TRANSFORMER_CONFIG).train()
    n_img = sp.tokens.seq_len - sp.tokens.text_len
    ids = torch.as_tensor(sp.tokens.ids, dtype=torch.float32)  # (S - T, 3)
    x = torch.randn(1, n_img, 64)  # (B, main + layout + refs, 64)
    txt = torch.randn(1, sp.tokens.text_len, TRANSFORMER_CONFIG["joint_attention_dim"])
    pooled = torch.randn(1, TRANSFORMER_CONFIG["pooled_projection_dim"])
    kwargs = dict(encoder_hidden_states=txt, pooled_projections=pooled, timestep=torch.tensor([0.5]),
                  guidance=torch.tensor([1.0]), img_ids=ids, txt_ids=torch.zeros(sp.tokens.text_len, 3))
    best = float("inf")
    for threads in sorted({torch.get_num_threads(), 1}, reverse=True):  # a shared machine: keep the faster
        torch.set_num_threads(threads)
        times = []
        for _ in range(steps + 1):
            start = time.perf_counter()
            out = model(hidden_states=x, **kwargs).sample  # (1, S - T, 64)
            loss = out[:, : sp.tokens.grid[0] * sp.tokens.grid[1]].pow(2).mean()
            loss.backward()
            times.append(time.perf_counter() - start)
        per_step = sorted(times[1:])[len(times[1:]) // 2]
        best = min(best, per_step)
        print(f"  tiny transformer forward+backward: S = {sp.tokens.seq_len} tokens, {per_step * 1000:.1f} ms/step "
              f"({1 / per_step:.1f} steps/s, median of {steps}, {threads} torch threads)", flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="Work in this folder and keep it.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    print(f"set-up (not timed as throughput), {args.n} synthetic records in {work}", flush=True)
    timed("  write IMIG tree", lambda: write_imig_tree(work / "imig", args.n))
    scenes = work / "scenes"
    timed("  write scene files", lambda: [export_record(synthetic_record(i), scenes) for i in range(args.n)])
    print("pack (scene YAML -> shards, decode-free)", flush=True)
    items = plan_pack(sorted(scenes.glob("*.yaml")))
    pack_rates = [bench_build("pack", pack_items, items, work / f"packed-{w}", w) for w in (1, args.workers)]
    print("import-imig (IMIG-100K folders -> shards, decode-free)", flush=True)
    imig_items, _ = plan_imig(work / "imig")
    imig_rates = [bench_build("import-imig", import_items, imig_items, work / f"imig-{w}", w)
                  for w in (1, args.workers)]
    same = all((work / f"{kind}-1" / p.name).read_bytes() == p.read_bytes()
               for kind in ("packed", "imig") for p in (work / f"{kind}-{args.workers}").glob("*.parquet"))
    print(f"  shards from 1 and {args.workers} workers identical (pack and import-imig): {same}")
    print("reader and training step", flush=True)
    raw, decoded = bench_reader(work / "packed-1", 4 * args.n)
    step = bench_step(work / "packed-1")
    print(f"summary: pack {pack_rates[0]:,.0f} / {pack_rates[1]:,.0f} records/s (1 / {args.workers} workers), "
          f"import-imig {imig_rates[0]:,.0f} / {imig_rates[1]:,.0f} records/s, reader {raw:,.0f} records/s "
          f"({decoded:,.0f} decoded), tiny step {1 / step:.1f} steps/s: the reader is {raw * step:,.0f}x "
          f"({decoded * step:,.0f}x decoded) faster than one example per step consumes")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
