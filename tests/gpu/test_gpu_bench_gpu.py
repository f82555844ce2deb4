"""On a CUDA GPU: flex equals sdpa on the tiny model, and the full-size benchmark's 768^2 scenario runs clean."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_render_flex_equals_sdpa_on_cuda(tiny_model_dir, tmp_path):
    from ctxgen.models.loading import load_model
    from ctxgen.models.registry import ModelSpec
    from ctxgen.sequence.prepare import prepare_scene
    from ctxgen.sampling.renderer import Renderer
    from ctxgen.scene.model import load_scene

    spec = ModelSpec(preset="tiny", base=str(tiny_model_dir / "base"), adapter=str(tiny_model_dir / "adapter"))
    sp = prepare_scene(load_scene(ROOT / "examples" / "park.yaml"), 8)
    images, peaks = {}, {}
    for kind in ("sdpa", "flex"):
        renderer = Renderer(load_model(spec, "cuda", "float32"), 8, attention=kind)
        sample = renderer.sample(sp, renderer.condition(sp), seed=1, steps=2, guidance=3.5)
        images[kind], peaks[kind] = sample.image, sample.peak_memory
    assert np.abs(images["sdpa"].astype(int) - images["flex"].astype(int)).max() <= 1
    assert all(p is not None and p > 0 for p in peaks.values())
    assert peaks["flex"] < peaks["sdpa"]  # no S x S bias on the device


def test_full_size_benchmark_768(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu_bench.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["gpu_bench"] = bench
    spec.loader.exec_module(bench)
    result = bench.main(["--scenarios", "768-3refs", "--out", str(tmp_path / "bench.json")])
    rows = {(r["config"], r["mode"]): r for r in result["steps"]}
    assert all("error" not in r for r in rows.values()), result["steps"]
    assert rows[("ctxgen-flex", "eager")]["step_ms"] < rows[("published", "eager")]["step_ms"]
    assert rows[("ctxgen-flex", "eager")]["peak_bytes"] < rows[("published", "eager")]["peak_bytes"]
    kernels = {k["kernel"]: k for k in result["attention"]["768-3refs"]}
    assert kernels["ctxgen-flex"]["ms"] < kernels["published"]["ms"]
    check = result["flex_vs_sdpa"]["768-3refs"]
    assert check["max_abs_diff"] < 0.05 * check["max_abs_output"]  # bf16, 57 blocks of random weights
