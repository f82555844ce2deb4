"""Which devices the workers get: `--devices all | cpu:N | 0,1 | cuda:0,cuda:1 | mps`, checked before any start."""

from __future__ import annotations

import os
import re

from ctxgen.core.errors import UsageError

_DEVICE = re.compile(r"(cpu|mps|cuda(:\d+)?|\d+)")


def parse_devices(spec: str, for_ray: bool = False) -> tuple[str, ...]:
    """`all`, `cpu:N` or a comma list (0,1 / cuda:0,cuda:1 / cpu,cpu / mps): one device per worker."""
    text = spec.strip().lower().replace(" ", "")
    hint = "use all, cpu:N, or a comma list such as 0,1 or cuda:0,cuda:1 or cpu,cpu"
    if text == "all":
        if for_ray:
            return ("all",)  # every GPU of the Ray cluster, counted there
        n = _cuda_count()
        if n == 0:
            raise UsageError("--devices all: no CUDA GPU found; use --devices cpu:N for N CPU workers")
        return tuple(f"cuda:{i}" for i in range(n))
    m = re.fullmatch(r"cpu:(\d{1,6})", text)
    if m:
        if not 1 <= int(m.group(1)) <= 256:
            raise UsageError(f"--devices {spec!r}: cpu:N needs 1 <= N <= 256")
        return ("cpu",) * int(m.group(1))
    items = text.split(",")
    if not all(_DEVICE.fullmatch(t) for t in items):
        raise UsageError(f"--devices {spec!r}: not a device list; {hint}")
    devices = tuple(f"cuda:{t}" if t.isdigit() else "cuda:0" if t == "cuda" else t for t in items)
    if for_ray and len({d.split(":")[0] for d in devices}) > 1:
        raise UsageError(f"--devices {spec!r}: with --backend ray use either GPUs (all, 0,1,...) or cpu:N, not both")
    return devices


def check_devices(devices: tuple[str, ...]) -> None:
    """Every CUDA index exists and MPS is available where asked (before any worker starts)."""
    cuda = [int(d.split(":")[1]) for d in devices if d.startswith("cuda")]
    if cuda:
        n = _cuda_count()
        bad = [i for i in cuda if i >= n]
        if bad:
            raise UsageError(f"--devices: cuda:{bad[0]} does not exist ({n} CUDA GPU(s) visible); use 0..{n - 1}")
    if "mps" in devices:
        import torch

        if not torch.backends.mps.is_available():
            raise UsageError("--devices: mps asked for but MPS is not available; use cpu")


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def worker_threads(n_workers: int) -> int:
    """Torch threads per worker: the cores this process may use, split evenly."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, n_workers))


