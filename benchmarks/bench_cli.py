"""CLI start-up and the model-free stages: prints numbers, asserts nothing.

    python3 benchmarks/bench_cli.py

1. `ctxgen --help` and `ctxgen validate` must import neither torch nor diffusers (read from `python -X importtime`).
2. Wall time of `ctxgen layout --dump` on the six-reference 1024² example (target: well under 2 s).
3. Wall time of a full tiny-model render of the 256² example, 2 steps, imports included (target: under 20 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run(args: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, **kw)
    return time.perf_counter() - t0, proc


def heavy_imports(args: list[str]) -> tuple[float, list[str]]:
    """Wall time and which heavy top-level packages an invocation imported."""
    secs, proc = run([sys.executable, "-X", "importtime", "-m", "ctxgen", *args])
    names = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return secs, sorted(names & {"torch", "diffusers", "transformers", "peft", "accelerate"})


def main() -> None:
    print("| invocation | wall s | heavy modules imported |")
    print("| --- | --- | --- |")
    for args in (["--help"], ["validate", str(EXAMPLES / "park.yaml")], ["schema"]):
        secs, heavy = heavy_imports(args)
        print(f"| ctxgen {' '.join(a.replace(str(ROOT) + '/', '') for a in args)} | {secs:.2f} | {', '.join(heavy) or 'none'} |")
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for _ in range(3):
            secs, proc = run([sys.executable, "-m", "ctxgen", "layout", str(EXAMPLES / "six.yaml"), "--dump", "--out", tmp])
            if proc.returncode != 0:
                sys.exit(proc.stderr)
            times.append(secs)
        print(f"\nctxgen layout --dump examples/six.yaml (1024², six refs): best {min(times):.2f} s, "
              f"median {sorted(times)[1]:.2f} s over 3 runs (wall, imports included)")
        env = {**os.environ, "CTXGEN_DEBUG": "1"}
        secs, proc = run([sys.executable, "-m", "ctxgen", "render", str(EXAMPLES / "small.yaml"), "--model", "tiny",
                          "--steps", "2", "--out", tmp, "--force"], env=env)
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        print(f"ctxgen render examples/small.yaml --model tiny --steps 2 (256², three refs): {secs:.2f} s wall, imports included")


if __name__ == "__main__":
    main()
