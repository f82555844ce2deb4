"""Bad inputs through `ctxgen render` on the tiny model: exit code, golden message lines, no partial file.

The render cases are in tests/golden/bad_inputs.yaml (tier `render`); weights are copies of the saved tiny model,
broken by the makers below. A full disk is simulated in-process by making `ctxgen.fsio`'s writes fail with ENOSPC.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from ctxgen.cli import app
from tests.faults import fail_writes

from tests.pure import test_bad_inputs as pure  # the shared table and the reference-image makers

FAST = ["--steps", "1", "--text-len", "16", "--no-overlays", "--device", "cpu"]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _wide_adapter(root: Path) -> None:
    """The tiny adapter with every lora_A widened to 64 inputs: an adapter trained for a base with another width."""
    src = max((root / "adapter").glob("*.safetensors"))
    sd = {k: torch.zeros(v.shape[0], 2 * v.shape[1]) if k.endswith("lora_A.weight") else v
          for k, v in load_file(src).items()}
    (root / "wide").mkdir()
    save_file(sd, root / "wide" / "contextgen_wide_300.safetensors")


def _altered(root: Path, name: str, change) -> None:
    """The tiny adapter with every tensor passed through `change`, saved as NAME/contextgen_300.safetensors."""
    src = max((root / "adapter").glob("*.safetensors"))
    (root / name).mkdir()
    save_file({k: change(v).contiguous() for k, v in load_file(src).items()}, root / name / "contextgen_300.safetensors")


def _pickled(root: Path) -> None:
    (root / "pickled").mkdir()
    torch.save({"transformer.x.lora_A.weight": torch.zeros(2, 2)}, root / "pickled" / "adapter_model.bin")


MODEL_MAKERS = {
    "base-without-vae-weights": lambda root: (root / "base/vae/diffusion_pytorch_model.safetensors").unlink(),
    "base-truncated-transformer": lambda root: _truncate(root / "base/transformer/diffusion_pytorch_model.safetensors"),
    "empty-folder": lambda root: (root / "empty").mkdir(),
    "adapter-for-a-wider-base": _wide_adapter,
    "adapter-pickled": _pickled,
    "adapter-nan": lambda root: _altered(root, "nan", lambda t: t.clone().fill_(float("nan"))),
    "adapter-int8": lambda root: _altered(root, "int8", lambda t: t.to(torch.int8)),
    "adapter-corrupt": lambda root: ((root / "corrupt").mkdir(),
                                     (root / "corrupt/contextgen_300.safetensors").write_bytes(b"\x10\0\0\0garbage")),
    "file-named-taken": lambda root: (root / "taken").write_text("a file, not a folder"),
    "adapter-float8": lambda root: _altered(root, "f8", lambda t: t.to(torch.float8_e4m3fn)),
    "adapter-text-file": lambda root: (root / "notes.txt").write_text("not weights"),
}


@pytest.fixture
def model_root(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A case folder holding copies of the tiny base/ and adapter/ (so the makers may break them) as the cwd."""
    root = tmp_path.resolve()
    shutil.copytree(tiny_model_dir / "base", root / "base")
    shutil.copytree(tiny_model_dir / "adapter", root / "adapter")
    monkeypatch.chdir(root)
    for name in ("CTXGEN_MAX_PIXELS", "CTXGEN_BASE", "CTXGEN_ADAPTER", "CTXGEN_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return root


def prepare(case: dict, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the model copies as the case asks, then write its scene, references and environment."""
    for maker in case.get("model", []):
        MODEL_MAKERS[maker](root)
    pure.build(case, root)
    for key, value in case.get("env", {}).items():
        monkeypatch.setenv(key, value)


def render(case: dict):
    args = [*case.get("args", ["s.yaml"]), "--base", case.get("base", "base"), "--adapter",
            case.get("adapter", "adapter"), "--out", case.get("out", "out"), *FAST, *case.get("options", [])]
    return CliRunner().invoke(app, ["render", *args])


def lines_of(stderr: str, root: Path) -> list[str]:
    """stderr as lines, {tmp} for the case folder; rich's wrapped log records joined back into one line each."""
    out: list[str] = []
    for line in stderr.splitlines():
        if line.startswith(" ") and out and out[-1].startswith("WARNING"):
            out[-1] += " " + line.strip()
        elif line.strip():
            out.append(line.rstrip())
    return [" ".join(line.split()).replace(str(root), "{tmp}") for line in out]


@pytest.mark.parametrize("case", [c for c in pure.CASES if "render" in c.get("tiers", [])], ids=lambda c: c["id"])
def test_render(case: dict, model_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prepare(case, model_root, monkeypatch)
    before = pure.files_under(model_root)
    result = render(case)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == case.get("exit", 1), result.stderr
    shared = "validate" in case["tiers"]  # a scene case of the validate tier: render adds its summary line
    summary = ["0 rendered, 0 skipped, 1 failed"] if shared else []
    assert lines_of(result.stderr, model_root) == case["expect"] + summary
    new = pure.files_under(model_root) - before
    if result.exit_code:
        assert new == set(), f"a failed render left files behind: {sorted(map(str, new))}"
    else:
        assert new == {Path("out/s/seed-1.png"), Path("out/s/seed-1.json")}
        sidecar = json.loads((model_root / "out/s/seed-1.json").read_text())
        assert {k: sidecar[k] for k in case.get("sidecar", {})} == case.get("sidecar", {})


SCENE = {"scene": "prompt: a red box\nsize: [256, 256]\nseed: 1\ninstances:\n  - image: refs/cut.png\n"
                  "    box: [64, 64, 192, 160]\n", "options": ["--text-len", "128"]}


def test_render_disk_full(model_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC on the first output: exit 1, one error line (a prompt that fits 128 tokens: no warning), no file left."""
    prepare(SCENE, model_root, monkeypatch)
    before = pure.files_under(model_root)
    calls = fail_writes(monkeypatch, lambda path, n: True)
    result = render(SCENE)
    assert result.exit_code == 1 and calls and all(p.parent == Path("out/s") for p in calls)
    assert lines_of(result.stderr, model_root) == [
        f"error {calls[0]}: write failed (No space left on device); free disk space or choose another --out",
        "0 rendered, 0 skipped, 1 failed"]
    assert pure.files_under(model_root) == before  # the temp file with the partial bytes is gone too


def test_render_disk_full_on_the_image_leaves_no_sidecar(model_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prepare(SCENE, model_root, monkeypatch)
    fail_writes(monkeypatch, lambda path, n: path.suffix == ".png")
    result = render(SCENE)
    assert result.exit_code == 1
    assert not (model_root / "out/s").exists() or list((model_root / "out/s").iterdir()) == []
