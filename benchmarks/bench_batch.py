"""Batch machinery cost and multi-worker speed-up on the tiny model: prints numbers, asserts nothing.

    python3 benchmarks/bench_batch.py [--scenes 10] [--steps 28]

1. Overhead per scene of `ctxgen render` over 10 copies of examples/small.yaml (256², three references), one worker:
   wall time of the batch minus the model load minus the render stages (plan, condition, sample) of every scene,
   as a share of the mean render time (target < 5 %). Image and sidecar writes are shown on their own line,
   and so is a second, all-skipped run (the resume check per scene).
2. Speed-up from one to two CPU worker processes (`--devices cpu:1` vs `--devices cpu:2`, end to end, model loads
   included) on scenes of mixed cost (half 256², half 512²), with the in-process single worker for reference.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "examples" / "small.yaml"
RENDER_STAGES = ("plan_s", "condition_s", "sample_s")


def write_scenes(folder: Path, n: int, mixed: bool) -> list[Path]:
    """n copies of small.yaml with distinct seeds (references made absolute); every other one at 512² if mixed."""
    folder.mkdir(parents=True, exist_ok=True)
    text = SMALL.read_text().replace("refs/", f"{ROOT / 'examples' / 'refs'}/")
    paths = []
    for k in range(n):
        doc = text.replace("seed: 7", f"seed: {100 + k}")
        if mixed and k % 2:
            doc = doc.replace("size: [256, 256]", "size: [512, 512]")
        paths.append(folder / f"scene_{k:02d}.yaml")
        paths[-1].write_text(doc)
    return paths


def overhead(tmp: Path, n: int, steps: int) -> None:
    from ctxgen.batch.job import BatchOptions, prepare_batch, run_batch

    scenes = write_scenes(tmp / "overhead", n, mixed=False)
    manifest = tmp / "overhead.jsonl"
    opts = BatchOptions(out=tmp / "out1", model="tiny", steps=steps, overlays=False, manifest=manifest)
    for label in ("render", "skip"):
        t0 = time.perf_counter()
        plan = prepare_batch(scenes, opts)  # one-time: imports, option and model-id checks
        t1 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = run_batch(plan, opts)
        wall = time.perf_counter() - t1
        print(f"{label}: one-time start (imports, checks) {t1 - t0:.2f} s")
        recs = [json.loads(line) for line in manifest.read_text().splitlines()][-n:]
        assert code == 0 and len(recs) == n
        if label == "skip":
            print(f"all-skipped re-run: {1000 * wall / n:.1f} ms per scene (load, hash, key, read PNG metadata)")
            continue
        load = sum(r["timings"].get("load_s", 0.0) for r in recs)
        render = sum(r["timings"][k] for r in recs for k in RENDER_STAGES)
        writes = sum(r["timings"]["write_s"] for r in recs)
        machinery = wall - load - render - writes
        print(f"{n} scenes, {steps} steps, 256²: wall {wall:.2f} s, model load {load:.2f} s, render {render:.2f} s "
              f"({render / n * 1000:.0f} ms per scene)")
        share = 100 * machinery / render
        print(f"batch machinery: {1000 * machinery / n:.1f} ms per scene = {share:.2f} % of the render time (< 5 %?)")
        print(f"image + sidecar writes: {1000 * writes / n:.1f} ms per scene = {100 * writes / render:.2f} %")
        steady = sorted(r["seconds"] - sum(r["timings"][k] for k in (*RENDER_STAGES, "write_s")) for r in recs[1:])
        print(f"steady state (scenes 2..{n}, median): {1000 * steady[len(steady) // 2]:.1f} ms per scene "
              "(the rest are first-scene costs: lazy imports, first torch calls)")


def speedup(tmp: Path, n: int, steps: int) -> None:
    scenes = write_scenes(tmp / "mixed", n, mixed=True)
    base = [sys.executable, "-m", "ctxgen.cli", "-q", "render", *map(str, scenes), "--model", "tiny",
            "--steps", str(steps), "--no-overlays", "--force"]
    runs = {"one in-process worker (2 threads)": [], "--devices cpu:1 (1 process, 2 threads)": ["--devices", "cpu:1"],
            "--devices cpu:2 (2 processes, 1 thread each)": ["--devices", "cpu:2"]}
    walls: dict[str, float] = {}
    for _ in range(2):  # interleaved twice, best of two: other work on the machine adds noise
        for label, extra in runs.items():
            out = tmp / "out2"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            proc = subprocess.run([*base, "-o", str(out), *extra], capture_output=True, text=True, cwd=ROOT)
            walls[label] = min(walls.get(label, float("inf")), time.perf_counter() - t0)
            assert proc.returncode == 0, proc.stderr
    for label, wall in walls.items():
        print(f"{label}: {wall:.1f} s for {n} scenes (half 256², half 512², {steps} steps), end to end")
    one, two = walls["--devices cpu:1 (1 process, 2 threads)"], walls["--devices cpu:2 (2 processes, 1 thread each)"]
    print(f"speed-up one -> two CPU workers: {one / two:.2f}x on {os.cpu_count()} cores")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=10)
    ap.add_argument("--steps", type=int, default=28, help="denoising steps (small.yaml's own: 28)")
    ap.add_argument("--part", choices=("all", "overhead", "speedup"), default="all")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (other work skews the timings)")
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("all", "overhead"):
            overhead(Path(tmp), args.scenes, args.steps)
        if args.part in ("all", "speedup"):
            speedup(Path(tmp), args.scenes, args.steps)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
