"""`ctxgen doctor` (R21): presets found in a Hugging Face cache laid out on disk, devices from a stand-in torch,
overrides from the environment, no network, and never an exception."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import types
from pathlib import Path

import pytest
from huggingface_hub import constants

from ctxgen.models import doctor
from ctxgen.models.registry import ADAPTER_HUB_ID, BASE_HUB_ID

COMPONENTS = {"scheduler": "scheduler_config.json", "vae": "config.json", "text_encoder": "config.json",
              "tokenizer": "tokenizer.json", "text_encoder_2": "config.json", "tokenizer_2": "tokenizer.json",
              "transformer": "config.json"}


def cached_repo(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """A repo in the hub cache's layout: content-addressed blobs, refs/main, and a snapshot of symlinks."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / "0123abcd"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).symlink_to(blob)
    return snap


def base_files() -> dict[str, bytes]:
    index = {name: ["diffusers", "X"] for name in COMPONENTS}
    files = {"model_index.json": json.dumps(index).encode()}
    for name, marker in COMPONENTS.items():
        files[f"{name}/{marker}"] = f"{{\"{name}\": 1}}".encode()
        if marker == "config.json":
            files[f"{name}/model.safetensors"] = f"weights of {name}".encode()
    return files


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache folder that huggingface_hub (and so doctor) uses; no CTXGEN_* overrides."""
    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    for name in ("CTXGEN_BASE", "CTXGEN_ADAPTER", "CTXGEN_SAM_MODEL", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return cache


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A stand-in `torch` with two CUDA devices and no MPS, so the CUDA report is tested without a GPU."""
    torch = types.ModuleType("torch")
    props = [types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=85_520_809_984, major=9, minor=0),
             types.SimpleNamespace(name="NVIDIA A10G", total_memory=23_609_475_072, major=8, minor=6)]
    torch.version = types.SimpleNamespace(cuda="12.8")
    torch.cuda = types.SimpleNamespace(is_available=lambda: True, device_count=lambda: 2,
                                       get_device_properties=lambda i: props[i])
    torch.backends = types.SimpleNamespace(mps=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", torch)
    return torch


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record (and refuse) every connect and name lookup."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_empty_machine(hub: Path, fake_torch, no_network: list) -> None:
    d = doctor.collect()
    assert set(d) == {"versions", "devices", "memory", "cache", "presets", "sam", "extras", "tiers"}
    assert d["cache"] == {"dir": str(hub), "exists": False, "size_bytes": 0, "repos": 0, "offline": False}
    assert d["presets"]["contextgen"] == {"base": BASE_HUB_ID, "base_status": "not in cache",
                                          "adapter": ADAPTER_HUB_ID, "adapter_status": "not in cache",
                                          "ready": False}
    assert d["presets"]["tiny"]["ready"] is True and d["presets"]["tiny"]["base_status"] == "built in"
    assert not any(m["present"] for m in d["sam"]["models"].values())
    assert no_network == []
    text = doctor.format_text(d)
    assert "contextgen: NOT READY; base black-forest-labs/FLUX.1-Kontext-dev (not in cache)" in text
    assert f"cache     {hub}: does not exist yet; HF_HUB_OFFLINE off" in text.splitlines()


def test_cached_presets_and_sam(hub: Path, fake_torch, no_network: list, monkeypatch: pytest.MonkeyPatch) -> None:
    cached_repo(hub, BASE_HUB_ID, base_files())
    cached_repo(hub, ADAPTER_HUB_ID, {"contextgen_100.safetensors": b"a", "contextgen_2000.safetensors": b"b"})
    cached_repo(hub, "facebook/sam2.1-hiera-tiny", {"config.json": b"{}", "model.safetensors": b"w"})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d = doctor.collect()
    assert d["presets"]["contextgen"]["ready"] is True
    assert d["presets"]["contextgen"]["base_status"] == "in cache, complete"
    assert d["presets"]["contextgen"]["adapter_status"] == "in cache: contextgen_2000.safetensors"
    assert d["cache"]["exists"] and d["cache"]["repos"] == 3 and d["cache"]["offline"] is True
    assert d["cache"]["size_bytes"] == sum(len(v) for v in base_files().values()) + 2 + 2 + 1
    assert {k: v["present"] for k, v in d["sam"]["models"].items()} == {
        "large": False, "base-plus": False, "small": False, "tiny": True}
    assert no_network == []


def test_incomplete_base_in_cache(hub: Path, fake_torch) -> None:
    files = base_files()
    del files["transformer/model.safetensors"], files["vae/config.json"]
    cached_repo(hub, BASE_HUB_ID, files)
    status = doctor.collect()["presets"]["contextgen"]
    assert status["base_status"] == "in cache, missing vae/config.json, transformer/*.safetensors"
    assert status["ready"] is False


def test_environment_overrides(hub: Path, fake_torch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "lora.bin").write_bytes(b"pickle")
    monkeypatch.setenv("CTXGEN_BASE", str(tmp_path / "base"))
    monkeypatch.setenv("CTXGEN_ADAPTER", str(tmp_path / "lora.bin"))
    monkeypatch.setenv("CTXGEN_SAM_MODEL", "tiny")
    d = doctor.collect()
    for name in ("contextgen", "tiny"):  # the overrides apply to every preset, the built-in one included
        assert d["presets"][name] == {"base": str(tmp_path / "base"), "base_status": "local folder, missing "
                                      "model_index.json", "adapter": str(tmp_path / "lora.bin"),
                                      "adapter_status": "local file, not .safetensors (refused)", "ready": False}
    assert d["sam"]["selected"] == "tiny"


def test_devices_from_torch(hub: Path, fake_torch) -> None:
    d = doctor.collect()["devices"]
    assert d["cuda"][0] == {"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_bytes": 85_520_809_984,
                            "capability": "9.0"}
    assert d["default"] == "cuda" and d["mps"] is False and d["cpu_cores"] >= 1 and d["cuda_version"] == "12.8"
    lines = doctor.format_text({"devices": d}).splitlines()
    assert lines[:3] == ["devices   cuda:0 NVIDIA H100 80GB HBM3 (79.6 GiB, compute 9.0)",
                         "          cuda:1 NVIDIA A10G (22.0 GiB, compute 8.6)",
                         f"          mps: no; cpu: {d['cpu_cores']} cores ({d['usable_cores']} usable); "
                         "--device auto picks cuda"]


def test_versions_memory_and_extras(hub: Path, fake_torch) -> None:
    d = doctor.collect()
    assert d["versions"]["ctxgen"] and d["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert d["versions"]["packages"]["pydantic"] and set(d["versions"]["packages"]) >= {"torch", "diffusers", "peft"}
    assert d["memory"]["total_bytes"] > 0 and set(d["extras"]) == {"ray", "bitsandbytes", "torchao", "scikit-image"}


def test_never_fails(hub: Path, fake_torch, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken():
        raise PermissionError("/proc/meminfo: permission denied")

    monkeypatch.setitem(doctor._PROBES, "memory", broken)
    monkeypatch.setattr(fake_torch.cuda, "is_available", lambda: 1 / 0)
    d = doctor.collect()
    assert d["memory"] == {"error": "PermissionError: /proc/meminfo: permission denied"}
    assert d["devices"] == {"error": "ZeroDivisionError: division by zero"}
    assert "presets" in d and "error" not in d["presets"]
    text = doctor.format_text({**d, "sam": {"models": "garbled"}, "extras": None})
    assert "memory    could not be read (PermissionError: /proc/meminfo: permission denied)" in text.splitlines()
    assert "sam       could not be shown (AttributeError: 'str' object has no attribute 'items')" in text
    assert "extras    not collected" in text.splitlines()


def test_without_torch(hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    d = doctor.collect()["devices"]
    assert d["error"] == "torch is not installed" and d["cuda"] == [] and d["default"] == "cpu"
    assert "note: torch is not installed" in doctor.format_text({"devices": d})


GPUS = {  # name -> torch's total_memory in bytes
    "NVIDIA A10G": 23_609_475_072, "NVIDIA GeForce RTX 4090": 25_393_692_672,
    "NVIDIA A100-SXM4-40GB": 42_298_834_944, "NVIDIA H100 80GB HBM3": 85_520_809_984, "Tesla T4": 15_828_320_256,
}
CHECKOUT_INSTALL = 'pip install -e ".[low-memory]" in the ctxgen checkout'


@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch):
    """gpus(*names, bitsandbytes=False): fake the devices probe and the bitsandbytes install; no measurements."""
    monkeypatch.setenv("CTXGEN_GPU_BENCH", "/nonexistent/gpu_bench.json")

    def use(*names: str, bitsandbytes: bool = False) -> dict:
        cuda = [{"index": i, "name": n, "memory_bytes": GPUS[n], "capability": "8.0"} for i, n in enumerate(names)]
        monkeypatch.setattr(doctor, "devices", lambda: {"cuda": cuda})
        real = doctor._version
        monkeypatch.setattr(doctor, "_version", lambda d: ("0.45.0" if bitsandbytes else None)
                            if d == "bitsandbytes" else real(d))
        return doctor.tiers()

    return use


def test_tier_table_sizes_and_estimates(gpus) -> None:
    t = gpus()
    assert [s["seq_len"] for s in t["scenarios"]] == [8192, 22528]  # R13 at 768^2/3 refs and 1024^2/6 refs
    rows = {r["tier"]: r for r in t["tiers"]}
    assert round(rows["full"]["weights_bytes"] / 1e9, 1) == 33.7  # 23.8 + 9.5 + 0.25 + 0.17
    assert round(rows["balanced"]["weights_bytes"] / 1e9, 1) == 23.8  # the transformer alone
    assert rows["low"]["weights_bytes"] < 0.35 * rows["full"]["weights_bytes"]
    for r in rows.values():
        for need in r["needs"].values():
            assert need["source"] == "estimate" and need["peak_bytes"] >= need["render_bytes"] > r["weights_bytes"]
    assert rows["full"]["needs"]["1024-6refs"]["render_bytes"] > rows["full"]["needs"]["768-3refs"]["render_bytes"]


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA GeForce RTX 4090"])
def test_a_24_gb_card_is_told_to_use_low_and_install_the_extra(gpus, name) -> None:
    (dev,) = gpus(name)["devices"]
    assert dev["recommended"] == "low" and dev["fits_every_size"] == ["low"]
    assert dev["advice"].startswith("use --memory low; full needs about 40.3 GB; balanced needs about 29.9 GB")
    assert dev["advice"].endswith(f"install its extra first: {CHECKOUT_INSTALL}")
    (ready,) = gpus(name, bitsandbytes=True)["devices"]
    assert ready["recommended"] == "low" and "install" not in ready["advice"]


def test_40_and_80_gb_cards_run_the_default(gpus) -> None:
    a100, h100 = gpus("NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3")["devices"]
    assert a100["recommended"] == h100["recommended"] == "full"
    assert a100["advice"] == h100["advice"] == "use --memory full (the default)"
    assert h100["fits_every_size"] == ["full", "balanced", "low"]


def test_a_16_gb_card_fits_no_tier(gpus) -> None:
    (t4,) = gpus("Tesla T4")["devices"]
    assert t4["recommended"] is None and t4["advice"] == "no tier fits; --memory low needs about 16.1 GB"


def test_tiers_text_with_and_without_a_gpu(gpus) -> None:
    lines = doctor.format_text({"tiers": gpus("NVIDIA A10G")}).splitlines()
    assert lines[0].startswith("tiers     GPU memory per --memory tier: FLUX.1-Kontext-dev")
    assert lines[2].split() == ["full", "33.7", "GB", "37.5", "GB", "34.6", "GB", "est.", "36.1", "GB", "est.",
                                "40.3", "GB"]
    assert lines[-1] == ("          cuda:0 NVIDIA A10G (23.6 GB): use --memory low; full needs about 40.3 GB; "
                         f"balanced needs about 29.9 GB; install its extra first: {CHECKOUT_INSTALL}")
    text = doctor.format_text({"tiers": gpus()})
    assert "no CUDA GPU here" in text and "low        10.7 GB" in text


def test_measured_peaks_replace_the_estimates(gpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = {"device": "NVIDIA H100 80GB HBM3", "tiers": {"scenario": "768-3refs", "rows": [
        {"tier": "full", "peak_bytes": 35_000_000_000}, {"tier": "low", "error": "skipped: needs bitsandbytes"},
        {"tier": "balanced", "peak_bytes": 25_500_000_000}]}}
    (tmp_path / "bench.json").write_text(json.dumps(result))
    gpus()
    monkeypatch.setenv("CTXGEN_GPU_BENCH", str(tmp_path / "bench.json"))
    t = doctor.tiers()
    rows = {r["tier"]: r["needs"] for r in t["tiers"]}
    assert rows["full"]["768-3refs"] == {"render_bytes": 35_000_000_000, "load_bytes": 37_450_077_126,
                                         "peak_bytes": 37_450_077_126, "source": "measured"}
    assert rows["low"]["768-3refs"]["source"] == rows["full"]["1024-6refs"]["source"] == "estimate"
    text = doctor.format_text({"tiers": t})
    assert "35.0 GB meas." in text and f"measured render peaks: {tmp_path / 'bench.json'} (NVIDIA H100" in text
