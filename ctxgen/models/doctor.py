"""`ctxgen doctor`: versions, devices, memory, the model cache, which presets are present and which memory
tiers fit each GPU (R21).

Everything is read from this machine only (nothing is downloaded or looked up online), and no probe can make
`collect` fail: what cannot be read is reported as `{"error": ...}` in its section.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctxgen import __version__

logger = logging.getLogger(__name__)

PACKAGES = ("torch", "diffusers", "transformers", "peft", "accelerate", "huggingface_hub", "safetensors",
            "pillow", "numpy", "pydantic", "typer")
EXTRAS = {  # distribution -> what it enables
    "ray": "--backend ray",
    "bitsandbytes": "--memory low, 4-bit NF4 weights; the low-memory extra",
    "torchao": "quantisation kernels; informational, --memory low uses bitsandbytes",
    "scikit-image": "SSIM in `compare`",
}
_GIB = 1024**3
_TRUE = {"1", "ON", "YES", "TRUE"}  # how huggingface_hub reads HF_HUB_OFFLINE


def collect() -> dict[str, Any]:
    """Every section of the report; a section that cannot be read holds {"error": "..."} instead of raising."""
    out: dict[str, Any] = {}
    for name, probe in _PROBES.items():
        try:
            out[name] = probe()
        except Exception as exc:  # doctor must never fail: report what it cannot read
            logger.debug("doctor: %s failed", name, exc_info=exc)
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, Any]:
    """ctxgen, Python, the platform and each required package's installed version (None when missing)."""
    return {"ctxgen": __version__, "python": platform.python_version(), "platform": platform.platform(),
            "packages": {name: _version(name) for name in PACKAGES}}


def devices() -> dict[str, Any]:
    """CPU cores, CUDA devices (name, memory, capability) and MPS, as torch sees them."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    out: dict[str, Any] = {"cpu_cores": cores, "usable_cores": usable, "cuda": [], "cuda_version": None,
                           "mps": False, "default": "cpu"}
    try:
        import torch
    except ImportError:
        out["error"] = "torch is not installed"
        return out

    out["cuda_version"] = torch.version.cuda
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out["cuda"].append({"index": i, "name": props.name, "memory_bytes": int(props.total_memory),
                                "capability": f"{props.major}.{props.minor}"})
    mps = getattr(torch.backends, "mps", None)
    out["mps"] = bool(mps is not None and mps.is_available())
    out["default"] = "cuda" if out["cuda"] else ("mps" if out["mps"] else "cpu")
    return out


def memory() -> dict[str, Any]:
    """Total and available RAM in bytes (/proc/meminfo, else sysconf)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        fields = {}
        for line in meminfo.read_text().splitlines():
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[key] = int(rest.split()[0]) * 1024
        return {"total_bytes": fields.get("MemTotal"), "available_bytes": fields.get("MemAvailable")}
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"total_bytes": int(total), "available_bytes": None}


def _cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _snapshots(repo_id: str) -> list[Path]:
    """The cached snapshot folders of a model repo, newest first (the cache's own layout; no network)."""
    folder = _cache_dir() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)


def cache() -> dict[str, Any]:
    """The Hugging Face cache folder, whether it exists, its size and repo count, and the offline switch."""
    from huggingface_hub import scan_cache_dir

    root = _cache_dir()
    out: dict[str, Any] = {"dir": str(root), "exists": root.is_dir(), "size_bytes": 0, "repos": 0,
                           "offline": os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE}
    if out["exists"]:
        info = scan_cache_dir(root)
        out["size_bytes"], out["repos"] = int(info.size_on_disk), len(info.repos)
        out["warnings"] = [str(w) for w in info.warnings][:3]
    return out


def _base_status(source: str) -> tuple[bool, str]:
    """(usable, why): is a base (hub id or local folder) complete on this machine? Nothing is loaded or fetched."""
    from ctxgen.models.loading import missing_base_files

    path = Path(source).expanduser()
    if path.is_dir():
        where, folder = "local folder", path
    elif path.exists():
        return False, "a file, not a folder in the diffusers layout"
    elif snaps := _snapshots(source):
        where, folder = "in cache", snaps[0]
    else:
        return False, "not in cache"
    missing = missing_base_files(folder)
    return (True, f"{where}, complete") if not missing else (False, f"{where}, missing {', '.join(missing[:3])}")


def _adapter_status(source: str | None) -> tuple[bool, str]:
    """(usable, why): does an adapter (hub id, folder or file) have a loadable .safetensors here? Nothing is fetched."""
    from ctxgen.core.errors import ModelError
    from ctxgen.models.adapter import pick_adapter_file

    if source is None:
        return True, "none"
    path = Path(source).expanduser()
    if path.is_file():
        ok = path.suffix.lower() == ".safetensors"
        return ok, "local file" if ok else "local file, not .safetensors (refused)"
    if path.is_dir():
        where, folder = "local folder", path
    elif snaps := _snapshots(source):
        where, folder = "in cache", snaps[0]
    else:
        return False, "not in cache"
    try:
        return True, f"{where}: {pick_adapter_file(folder).name}"
    except ModelError as exc:
        return False, f"{where}, unusable: {exc}"


def presets() -> dict[str, Any]:
    """Each preset's base and adapter (after CTXGEN_BASE / CTXGEN_ADAPTER) and whether their weights are here."""
    from ctxgen.models.registry import PRESETS, resolve_model_spec

    out: dict[str, Any] = {}
    for name, preset in PRESETS.items():
        spec = resolve_model_spec(name)
        built_in = preset.builtin and spec.base == preset.base
        base_ok, base = (True, "built in") if built_in else _base_status(spec.base)
        adapter_ok, adapter = _adapter_status(spec.adapter)
        out[name] = {"base": spec.base, "base_status": base, "adapter": spec.adapter, "adapter_status": adapter,
                     "ready": base_ok and adapter_ok}
    return out


def sam() -> dict[str, Any]:
    """Which SAM 2.1 checkpoints (for `mask: auto`) are in the cache, and the one CTXGEN_SAM_MODEL picks."""
    from ctxgen.models.sam import SAM_MODELS

    found = {}
    for name, repo in SAM_MODELS.items():
        snaps = _snapshots(repo)
        ok = any((s / "config.json").is_file() and any(s.glob("*.safetensors")) for s in snaps)
        found[name] = {"repo": repo, "present": ok}
    return {"models": found, "selected": os.environ.get("CTXGEN_SAM_MODEL", "large")}


def extras() -> dict[str, Any]:
    """Optional packages: installed version (None when absent) and what each enables."""
    return {name: {"version": _version(name), "for": purpose} for name, purpose in EXTRAS.items()}


def _measurements() -> tuple[dict, str | None, str | None]:
    """Render peaks measured by `benchmarks/gpu_bench.py --tiers`: the JSON named by CTXGEN_GPU_BENCH, else
    benchmarks/results/gpu_bench.json in the checkout ctxgen runs from; ({}, None, None) when there is none."""
    from ctxgen.models.tiers import read_measurements

    named = os.environ.get("CTXGEN_GPU_BENCH", "").strip()
    path = Path(named) if named else Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "gpu_bench.json"
    if not path.is_file():
        return {}, None, None
    result = json.loads(path.read_text(encoding="utf-8"))
    return read_measurements(result), str(path), result.get("device")


def tiers() -> dict[str, Any]:
    """What each --memory tier needs (measured where a benchmark result exists, else estimated) and, for every
    CUDA device `devices()` reports, which tiers fit and what to run."""
    from ctxgen.models.tiers import RESERVE, SCENARIOS, SLACK, TIER_SIZES, advise, card_bytes, tier_needs

    measured, source, bench_device = _measurements()
    rows = tier_needs(measured)
    for row in rows:
        row["card_bytes"] = max(card_bytes(n["peak_bytes"]) for n in row["needs"].values())
    low_ready = _version("bitsandbytes") is not None
    try:
        cuda = devices().get("cuda", [])
    except Exception as exc:  # the table is still worth showing
        logger.debug("doctor: devices failed", exc_info=exc)
        cuda = []
    return {"model": "FLUX.1-Kontext-dev + the ContextGen adapter (r=512), bf16", "unit": "bytes (GB = 10^9)",
            "scenarios": [{"name": s.name, "size": [s.side, s.side], "refs": s.refs, "seq_len": s.seq_len}
                          for s in SCENARIOS],
            "tiers": rows, "adapter_bytes": TIER_SIZES.adapter_params * 2, "headroom": {"slack": SLACK,
            "reserve_bytes": RESERVE}, "measured_from": source, "measured_on": bench_device,
            "devices": [{"index": g["index"], "name": g["name"], "memory_bytes": g["memory_bytes"],
                         **advise(g["memory_bytes"], rows, low_ready)} for g in cuda],
            "low_memory_installed": low_ready}


_PROBES: dict[str, Callable[[], dict[str, Any]]] = {
    "versions": versions, "devices": devices, "memory": memory, "cache": cache, "presets": presets,
    "sam": sam, "extras": extras, "tiers": tiers,
}


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / _GIB:.1f} GiB"


def format_text(d: dict[str, Any]) -> str:
    """The report as aligned plain-text lines, one group per section present in `d` (no colour, safe to paste)."""
    lines: list[str] = []
    for name, render in _FORMATS.items():
        if name not in d:
            continue
        section = d[name]
        if not isinstance(section, dict):
            body = ["not collected"]
        elif set(section) == {"error"}:
            body = [f"could not be read ({section['error']})"]
        else:
            try:
                body = render(section)
            except Exception as exc:  # a malformed section must not hide the others
                body = [f"could not be shown ({type(exc).__name__}: {exc})"]
        lines += [f"{name if i == 0 else '':<9} {text}" for i, text in enumerate(body)]
    return "\n".join(lines)


def _fmt_versions(s: dict) -> list[str]:
    pkgs = ", ".join(f"{k} {v or 'MISSING'}" for k, v in s["packages"].items())
    return [f"ctxgen {s['ctxgen']}, Python {s['python']} on {s['platform']}", pkgs]


def _fmt_devices(s: dict) -> list[str]:
    cuda = [f"cuda:{g['index']} {g['name']} ({_gib(g['memory_bytes'])}, compute {g['capability']})"
            for g in s.get("cuda", [])]
    if not cuda:
        cuda = [f"cuda: none (torch built for CUDA {s['cuda_version']})" if s.get("cuda_version") else "cuda: none"]
    tail = [f"mps: {'yes' if s.get('mps') else 'no'}; cpu: {s['cpu_cores']} cores ({s['usable_cores']} usable); "
            f"--device auto picks {s['default']}"]
    return cuda + tail + ([f"note: {s['error']}"] if "error" in s else [])


def _fmt_memory(s: dict) -> list[str]:
    return [f"RAM {_gib(s['total_bytes'])} total, {_gib(s['available_bytes'])} available"]


def _fmt_cache(s: dict) -> list[str]:
    state = f"{s['repos']} repos, {_gib(s['size_bytes'])}" if s["exists"] else "does not exist yet"
    return [f"{s['dir']}: {state}; HF_HUB_OFFLINE {'on' if s['offline'] else 'off'}"]


def _fmt_presets(s: dict) -> list[str]:
    out = []
    for name, p in s.items():
        adapter = f"adapter {p['adapter']} ({p['adapter_status']})" if p["adapter"] else "no adapter"
        state = "ready" if p["ready"] else "NOT READY"
        out.append(f"{name}: {state}; base {p['base']} ({p['base_status']}); {adapter}")
    return out


def _fmt_sam(s: dict) -> list[str]:
    found = ", ".join(f"{k} {'present' if v['present'] else 'absent'}" for k, v in s["models"].items())
    return [f"{found}; --sam-model {s['selected']}"]


def _fmt_extras(s: dict) -> list[str]:
    return [f"{k}: {v['version'] or 'not installed'} ({v['for']})" for k, v in s.items()]


def _fmt_tiers(s: dict) -> list[str]:
    def gb(n: float) -> str:
        return f"{n / 1e9:.1f} GB"

    names = [f"{sc['size'][0]}x{sc['size'][1]}, {sc['refs']} refs" for sc in s["scenarios"]]
    out = [f"GPU memory per --memory tier: {s['model']} (GB = 10^9 bytes; est. = estimated, meas. = measured)",
           f"{'tier':<9}{'weights':>9}{'loading':>9}" + "".join(f"{n:>20}" for n in names) + f"{'card needed':>13}"]
    for r in s["tiers"]:
        needs = list(r["needs"].values())
        cells = "".join(f"{gb(n['render_bytes']) + (' est.' if n['source'] == 'estimate' else ' meas.'):>20}"
                        for n in needs)
        out.append(f"{r['tier']:<9}{gb(r['weights_bytes']):>9}{gb(needs[0]['load_bytes']):>9}{cells}"
                   f"{gb(r['card_bytes']):>13}")
    out.append(f"loading = weights + the adapter ({gb(s['adapter_bytes'])}) while it is fused; card needed = the "
               f"larger peak + {100 * s['headroom']['slack']:.0f}% + {gb(s['headroom']['reserve_bytes'])}")
    if s["measured_from"]:
        out.append(f"measured render peaks: {s['measured_from']} ({s['measured_on']})")
    out += [f"cuda:{g['index']} {g['name']} ({gb(g['memory_bytes'])}): {g['advice']}" for g in s["devices"]]
    if not s["devices"]:
        out.append("no CUDA GPU here: real weights need one; `card needed` says how large for each tier")
    return out


_FORMATS: dict[str, Callable[[dict], list[str]]] = {
    "versions": _fmt_versions, "devices": _fmt_devices, "memory": _fmt_memory, "cache": _fmt_cache,
    "presets": _fmt_presets, "sam": _fmt_sam, "extras": _fmt_extras, "tiers": _fmt_tiers,
}
