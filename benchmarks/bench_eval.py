"""`ctxgen eval` costs on this machine with tiny-random roles: seconds per image and the share spent outside the
models (decoding, pre/post-processing, metrics), plus the HTML report for 800 images (time and size).

    python3 benchmarks/bench_eval.py [--images 24]

Tiny models make the model share small on purpose; the point is that the non-model share stays small in
absolute terms (milliseconds per image), so with real models it is negligible.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import eval_helpers as h  # noqa: E402

from ctxgen.eval.cases import load_cocomig, load_lamic  # noqa: E402
from ctxgen.eval.cocomig import CocoMigEval, MigSettings  # noqa: E402
from ctxgen.eval.lamic import LamicEval, LamicSettings  # noqa: E402
from ctxgen.eval.report import write_report  # noqa: E402
from ctxgen.eval.run import RunOptions, run_eval  # noqa: E402
from ctxgen.vision.registry import tiny_defaults  # noqa: E402


def model_seconds(stats: pstats.Stats) -> float:
    """Cumulative time inside torch modules' forward (outermost calls only, as cProfile counts recursion)."""
    return sum(v[3] for k, v in stats.stats.items() if k[2] == "_call_impl" and "torch/nn/modules/module.py" in k[0])


def bench(name: str, evaluator, bench_key: str, out: Path, warm) -> dict:
    specs = tiny_defaults(bench_key)
    warm(specs)  # build the tiny models once (not per image)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    res = run_eval(evaluator, specs, RunOptions(out=out, device="cpu", force=True))
    prof.disable()
    total = time.perf_counter() - t0
    n = len(res.records)
    models = model_seconds(pstats.Stats(prof))
    row = {"bench": name, "images": n, "s_per_image": total / n, "decode_s_per_image": res.timings["decode"] / n,
           "model_share": models / total, "outside_models_ms_per_image": 1000 * (total - models) / n}
    print(json.dumps(row))
    return row


def report_800(tmp: Path) -> dict:
    run = tmp / "cocomig-run"
    data = json.loads((run / "metrics.json").read_text())
    data["images"] = [dict(r, image=r["image"]) for r in data["images"] * (800 // len(data["images"]) + 1)][:800]
    data["counts"]["scored"] = 800
    big = tmp / "big"
    big.mkdir()
    (big / "metrics.json").write_text(json.dumps(data))
    t0 = time.perf_counter()
    page = write_report([big, run], tmp / "report.html", worst=24)
    row = {"report_images": 800, "report_s": time.perf_counter() - t0, "report_bytes": page.stat().st_size}
    print(json.dumps(row))
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=24)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mig_bench, mig_images = h.write_cocomig(tmp / "mig")
        cases = load_cocomig([mig_bench])
        for i in range(2, args.images):  # more cases, same two pictures
            (mig_images / f"{i:04d}.png").write_bytes((mig_images / f"{i % 2:04d}.png").read_bytes())
        mig_bench.write_text(json.dumps({str(i): {"caption": cases[i % 2].caption, "segment": [
            {"bbox": list(x.bbox), "label": x.label} for x in cases[i % 2].instances]} for i in range(args.images)}))
        from ctxgen.vision.roles import RoleSet

        warm = lambda specs: [RoleSet(specs).get(r) for r in specs]  # noqa: E731
        bench("cocomig", CocoMigEval(load_cocomig([mig_bench]), mig_images, MigSettings()), "cocomig",
              tmp / "cocomig-run", warm)
        lam_bench, lam_images = h.write_lamic(tmp / "lamic", samples=max(1, args.images // 2))
        bench("lamic", LamicEval(load_lamic([lam_bench]), lam_images,
                                 LamicSettings(tmp / "lamic" / "reference_images", tmp / "lamic" / "reference_masks",
                                               samples=max(1, args.images // 2))), "lamic", tmp / "lamic-run", warm)
        report_800(tmp)


if __name__ == "__main__":
    main()
