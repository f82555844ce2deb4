"""Safety on the tiny model: with local weights nothing touches the network, nothing is ever unpickled,
HF_HUB_OFFLINE is honoured, and outputs stay inside --out whatever the labels say."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from PIL import Image
from typer.testing import CliRunner

from ctxgen.models import doctor
from ctxgen.cli import app
from ctxgen.core.errors import ModelError
from ctxgen.models.adapter import read_adapter, resolve_adapter_file
from ctxgen.models.loading import load_model
from ctxgen.models.registry import ModelSpec

ROOT = Path(__file__).resolve().parents[2]
SCENE = ("prompt: a red box\nsize: [256, 256]\nseed: 3\ninstances:\n  - image: cut.png\n    box: [32, 32, 200, 180]\n"
         "    label: ../../escaped\n    phrase: /etc/passwd\n")


@pytest.fixture
def guards(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, list]:
    """Offline mode on, an empty hub cache, and every connect, name lookup and unpickling recorded and refused."""
    seen: dict[str, list] = {"network": [], "unpickle": []}

    def refuse(kind: str):
        def call(*args, **kwargs):
            seen[kind].append(args[:2])
            raise OSError(f"{kind} blocked by the test")
        return call

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse("network"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("network"))
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse("unpickle"))
    monkeypatch.setattr(torch, "load", refuse("unpickle"))
    return seen


def test_local_render_offline_without_unpickling(tiny_model_dir: Path, tmp_path: Path, guards: dict,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Local --base/--adapter, overlays on, a label full of `../`: it renders, every file is under out/s."""
    Image.new("RGBA", (48, 40), (220, 40, 30, 255)).save(tmp_path / "cut.png")
    (tmp_path / "s.yaml").write_text(SCENE)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["render", "s.yaml", "--base", str(tiny_model_dir / "base"), "--adapter",
                                      str(tiny_model_dir / "adapter"), "--out", "out", "--steps", "1",
                                      "--text-len", "128", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    assert guards == {"network": [], "unpickle": []}
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".png", ".json")]
    outputs = {p.relative_to(tmp_path) for p in files} - {Path("cut.png")}
    assert Path("out/s/seed-3.png") in outputs and any(p.parent.name == "seed-3.debug" for p in outputs)
    assert all(p.parts[:2] == ("out", "s") for p in outputs)


def test_pickled_adapters_are_refused_unopened(tiny_model_dir: Path, tmp_path: Path, guards: dict) -> None:
    folder = tmp_path / "lora"
    folder.mkdir()
    for name in ("adapter_model.bin", "lora.pt", "lora.ckpt"):
        (folder / name).write_bytes(b"\x80\x04K\x01.")  # a pickle of the integer 1
    for source in (folder, folder / "lora.pt"):
        with pytest.raises(ModelError, match="refusing to unpickle"):
            resolve_adapter_file(str(source))
    with pytest.raises(ModelError, match=r"lora\.ckpt: refusing to unpickle '\.ckpt' weights"):
        read_adapter(None, folder / "lora.ckpt")
    spec = ModelSpec(preset="tiny", base=str(tiny_model_dir / "base"), adapter=str(folder / "adapter_model.bin"))
    with pytest.raises(ModelError, match="refusing to unpickle '.bin' weights"):
        load_model(spec, device="cpu", dtype="float32")
    assert guards == {"network": [], "unpickle": []}


def test_hub_ids_offline_fail_cleanly(tiny_model_dir: Path, tmp_path: Path, guards: dict,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1 and a hub id not in the cache: a one-line ModelError, never a connection."""
    with pytest.raises(ModelError) as info:
        resolve_adapter_file("someone/some-adapter")
    assert str(info.value).startswith("adapter 'someone/some-adapter': cannot fetch it from the hub (")
    assert str(info.value).endswith("run `hf download someone/some-adapter` while online, or pass --adapter PATH "
                                    "to a local .safetensors file or folder")
    Image.new("RGB", (48, 40), (220, 40, 30)).save(tmp_path / "cut.png")
    (tmp_path / "s.yaml").write_text(SCENE.replace("    label:", "    mask: auto\n    label:"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["layout", "s.yaml", "--out", "out", "--sam-model", "tiny", "--device", "cpu"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error s.yaml:7:11 instances[0].mask: SAM 2.1 weights "
                                    "'facebook/sam2.1-hiera-tiny' are not available")  # at the instance's line
    assert not (tmp_path / "out" / "s").exists()
    assert guards == {"network": [], "unpickle": []}


GUARDED_CLI = textwrap.dedent("""
    import os, socket, sys
    def refuse(*args, **kwargs):
        sys.stderr.write(f"NETWORK {args[:2]!r}\\n")
        os._exit(97)
    socket.socket.connect = socket.socket.connect_ex = socket.getaddrinfo = refuse
    from ctxgen.cli import app
    app(sys.argv[1:], prog_name="ctxgen")
""")


def test_hf_hub_offline_environment_is_honoured(tiny_model_dir: Path, tmp_path: Path) -> None:
    """In a fresh process (huggingface_hub reads HF_HUB_OFFLINE at import): a hub adapter id fails without a socket."""
    (tmp_path / "s.yaml").write_text(SCENE)
    Image.new("RGBA", (48, 40), (220, 40, 30, 255)).save(tmp_path / "cut.png")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)}
    env.pop("HF_HUB_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", GUARDED_CLI, "render", "s.yaml", "--base",
                           str(tiny_model_dir / "base"), "--adapter", "someone/some-adapter", "--out", "out",
                           "--device", "cpu"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "NETWORK" not in proc.stderr
    assert proc.stderr.startswith("error model weights are not available: adapter 'someone/some-adapter' is not in "
                                  "the Hugging Face cache (HF_HUB_OFFLINE is set); get them with "
                                  "`hf download someone/some-adapter`")  # checked before anything loads
    assert proc.stderr.splitlines()[-1] == "0 rendered, 0 skipped, 1 failed"
    assert not (tmp_path / "out").exists()


def test_doctor_offline_with_real_torch(guards: dict) -> None:
    d = doctor.collect()
    assert not any(set(section) == {"error"} for section in d.values()), d
    assert d["devices"]["default"] in ("cpu", "cuda", "mps") and d["cache"]["offline"] is True
    assert d["presets"]["tiny"]["ready"] is True and d["presets"]["contextgen"]["ready"] is False
    assert "contextgen: NOT READY" in doctor.format_text(d)
    assert guards == {"network": [], "unpickle": []}
