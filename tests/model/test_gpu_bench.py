"""benchmarks/gpu_bench.py --tiny: the GPU benchmark's code path on CPU at toy scale, float32."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from ctxgen.sampling.flex import flex_available

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_bench.py"


@pytest.fixture(scope="module")
def gpu_bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_full_size_settings(gpu_bench):
    arch = gpu_bench.FULL_ARCH
    assert (arch["num_layers"], arch["num_single_layers"]) == (19, 38)
    assert arch["num_attention_heads"] * arch["attention_head_dim"] == 3072 and sum(arch["axes_dims_rope"]) == 128
    seq = {s.name: gpu_bench.scene_plan(s)[0].seq_len for s in gpu_bench.FULL_SCENARIOS}
    assert seq == {"768-3refs": 8192, "1024-6refs": 22528}  # the spec's cost section
    args = gpu_bench.parse_args([])
    assert (args.rank, args.compile_backend, args.reps) == (512, "inductor", 3)


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
@pytest.mark.skipif(not flex_available(), reason="FlexAttention needs torch >= 2.6")
def test_tiny_mode_runs_every_configuration(gpu_bench, tmp_path, capsys):
    out = tmp_path / "bench.json"
    result = gpu_bench.main(["--tiny", "--scenarios", "tiny-3refs", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    rows = result["steps"]
    assert [(r["config"], r["mode"]) for r in rows] == list(gpu_bench.CONFIGS)
    assert all("error" not in r and r["step_ms"] > 0 for r in rows), rows
    assert all(r["compile_s"] >= 0 for r in rows if r["mode"] == "compiled")
    published = next(r for r in rows if r["config"] == "published" and r["mode"] == "eager")
    assert published["speedup_vs_published_eager"] == 1.0
    kernels = {k["kernel"]: k for k in result["attention"]["tiny-3refs"]}
    assert set(kernels) == {"published", "ctxgen-sdpa", "ctxgen-flex", "no-mask (not ContextGen)"}
    assert all(k["ms"] > 0 for k in kernels.values())
    check = result["flex_vs_sdpa"]["tiny-3refs"]
    assert check["max_abs_diff"] < 1e-5 < check["max_abs_output"]  # float32: the two kernels agree
    table = capsys.readouterr().out
    steps, kernels_table = table.split("attention kernel")
    assert "| tiny-3refs | ctxgen-flex | compiled |" in steps and "| tiny-3refs | ctxgen-flex |" in kernels_table
    assert result["lora_rank"] == 4 and result["dtype"] == "float32"


def test_failing_configuration_is_reported_not_raised(gpu_bench):
    args = gpu_bench.parse_args(["--tiny"])
    model = gpu_bench.build_transformer(gpu_bench.TINY_ARCH, gpu_bench.torch.device("cpu"), gpu_bench.torch.float32, 0)
    row = gpu_bench.run_config(model, "published", "eager", {}, {}, args, gpu_bench.torch.device("cpu"))
    assert row["error"].startswith("TypeError") and "step_ms" not in row
    assert all(p.abs().sum() > 0 for p in model.parameters())  # random weights, never zeros
