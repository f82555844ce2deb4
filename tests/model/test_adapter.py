"""Adapter resolution, pickle refusal, corruption and mismatch errors, and the fuse/unfuse round trip (R21)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch

from ctxgen.core.errors import ModelError
from ctxgen.models.adapter import ADAPTER_NAME, pick_adapter_file, resolve_adapter_file
from ctxgen.models.loading import unfuse_adapter
from ctxgen.models.loading import load_model
from ctxgen.models.registry import ModelSpec


def _spec(tiny_model_dir: Path, adapter: Path | str | None) -> ModelSpec:
    return ModelSpec("tiny", str(tiny_model_dir / "base"), None if adapter is None else str(adapter))


class _Tripwire:
    """Unpickling this object creates the marker file, so a test can tell whether anything unpickled it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_highest_step_wins(tiny_model_dir, tmp_path):
    assert pick_adapter_file(tiny_model_dir / "adapter").name == "contextgen_tiny_200.safetensors"
    shutil.copy(tiny_model_dir / "adapter" / "contextgen_tiny_100.safetensors", tmp_path / "lora_1000.safetensors")
    shutil.copy(tiny_model_dir / "adapter" / "contextgen_tiny_200.safetensors", tmp_path / "lora_999.safetensors")
    (tmp_path / "notes.safetensors").write_bytes(b"")  # no step: ignored when stepped files exist
    assert resolve_adapter_file(str(tmp_path)) == tmp_path / "lora_1000.safetensors"  # numeric, not text, order
    shutil.copy(tmp_path / "lora_999.safetensors", tmp_path / "other_1000.safetensors")
    with pytest.raises(ModelError, match="share the highest step 1000"):
        resolve_adapter_file(str(tmp_path))


def test_unstepped_folder_rules(tiny_model_dir, tmp_path):
    shutil.copy(tiny_model_dir / "adapter" / "contextgen_tiny_100.safetensors", tmp_path / "lora.safetensors")
    assert resolve_adapter_file(str(tmp_path)) == tmp_path / "lora.safetensors"
    shutil.copy(tmp_path / "lora.safetensors", tmp_path / "other.safetensors")
    with pytest.raises(ModelError, match="2 .safetensors files") as err:
        resolve_adapter_file(str(tmp_path))
    assert "lora.safetensors" in str(err.value) and "other.safetensors" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no .safetensors file"):
        resolve_adapter_file(str(tmp_path / "empty"))


def test_pickled_adapter_refused_without_unpickling(tiny_model_dir, tmp_path):
    marker = tmp_path / "unpickled.marker"
    folder = tmp_path / "pickles"
    folder.mkdir()
    torch.save({"transformer.x_embedder.lora_A.weight": _Tripwire(marker)}, folder / "contextgen_300.bin")
    for source in (folder / "contextgen_300.bin", folder):
        with pytest.raises(ModelError, match="refusing to unpickle .* convert to safetensors"):
            load_model(_spec(tiny_model_dir, source), device="cpu")
    renamed = folder / "contextgen_300.ckpt"
    (folder / "contextgen_300.bin").rename(renamed)
    with pytest.raises(ModelError, match="refusing to unpickle '.ckpt'"):
        resolve_adapter_file(str(renamed))
    assert not marker.exists()


def test_corrupted_safetensors_refused(tiny_model_dir, tmp_path):
    good = (tiny_model_dir / "adapter" / "contextgen_tiny_200.safetensors").read_bytes()
    (tmp_path / "cut_1.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        load_model(_spec(tiny_model_dir, tmp_path / "cut_1.safetensors"), device="cpu")
    (tmp_path / "cut_1.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        load_model(_spec(tiny_model_dir, tmp_path / "cut_1.safetensors"), device="cpu")


def test_adapter_for_another_base_names_keys(tiny_model_dir, tmp_path):
    sd = safetensors.torch.load_file(tiny_model_dir / "adapter" / "contextgen_tiny_200.safetensors")
    sd["transformer.x_embedder.lora_A.weight"] = torch.randn(4, 128)  # a 128-channel (Control-style) base
    sd["transformer.transformer_blocks.7.attn.to_q.lora_A.weight"] = torch.randn(4, 32)  # a deeper base
    sd["transformer.transformer_blocks.7.attn.to_q.lora_B.weight"] = torch.randn(32, 4)
    safetensors.torch.save_file(sd, tmp_path / "other_base.safetensors")
    with pytest.raises(ModelError) as err:
        load_model(_spec(tiny_model_dir, tmp_path / "other_base.safetensors"), device="cpu")
    msg = str(err.value)
    assert "3 mismatched keys" in msg and "\n" not in msg
    assert "transformer.x_embedder.lora_A.weight (shape 4x128, the base needs rx64)" in msg
    assert "transformer.transformer_blocks.7.attn.to_q.lora_A.weight (the transformer has no Linear" in msg


def test_text_encoder_lora_is_not_the_contextgen_adapter(tiny_model_dir, tmp_path):
    sd = {"text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": torch.randn(4, 32),
          "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight": torch.randn(32, 4)}  # fmt: skip
    safetensors.torch.save_file(sd, tmp_path / "te.safetensors")
    with pytest.raises(ModelError, match="not a transformer weight"):
        load_model(_spec(tiny_model_dir, tmp_path / "te.safetensors"), device="cpu")


def test_hub_adapter_uses_safetensors_snapshot(monkeypatch, tiny_model_dir):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    seen = {}

    def fake_snapshot(repo_id, allow_patterns):
        seen.update(repo_id=repo_id, allow_patterns=allow_patterns)
        return str(tiny_model_dir / "adapter")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    assert resolve_adapter_file("ruihangxu/ContextGen").name == "contextgen_tiny_200.safetensors"
    assert seen == {"repo_id": "ruihangxu/ContextGen", "allow_patterns": ["*.safetensors"]}

    def offline(repo_id, allow_patterns):
        raise LocalEntryNotFoundError("outgoing traffic has been disabled")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ModelError, match="hf download ruihangxu/ContextGen"):
        resolve_adapter_file("ruihangxu/ContextGen")


def _lora_bases(transformer) -> dict[str, torch.Tensor]:
    layers = [(n, m) for n, m in transformer.named_modules() if hasattr(m, "lora_A")]
    return {n: m.get_base_layer().weight.detach().clone() for n, m in layers}


def test_fuse_unfuse_round_trip(tiny_model_dir, tiny_forward):
    base = load_model(_spec(tiny_model_dir, None), device="cpu", dtype="float32")
    fused = load_model(_spec(tiny_model_dir, tiny_model_dir / "adapter"), device="cpu", dtype="float32")
    separate = load_model(_spec(tiny_model_dir, tiny_model_dir / "adapter"), device="cpu", dtype="float32", fuse=False)
    out_base, out_fused = tiny_forward(base.transformer), tiny_forward(fused.transformer)
    assert (out_fused - out_base).abs().max() > 1e-2  # the adapter changes the prediction
    torch.testing.assert_close(tiny_forward(separate.transformer), out_fused, atol=1e-4, rtol=0)
    assert not separate.fused and len(_lora_bases(separate.transformer)) == 1 + 2 * 6 + 4 * 6

    unfused = unfuse_adapter(fused)
    assert not unfused.fused and unfused.adapter_sha256 == fused.adapter_sha256
    bases = _lora_bases(unfused.transformer)
    assert len(bases) == 37
    assert all(ADAPTER_NAME in m.lora_A for m in unfused.transformer.modules() if hasattr(m, "lora_A"))
    for name, weight in bases.items():
        torch.testing.assert_close(weight, base.transformer.get_submodule(name).weight, atol=1e-6, rtol=0)
    torch.testing.assert_close(tiny_forward(unfused.transformer), out_fused, atol=1e-4, rtol=0)
    with pytest.raises(ValueError):
        unfuse_adapter(unfused)


def test_step_100_and_200_are_different_adapters(tiny_model_dir, tiny_model, tiny_forward):
    step_100 = tiny_model_dir / "adapter" / "contextgen_tiny_100.safetensors"
    older = load_model(_spec(tiny_model_dir, step_100), device="cpu")
    assert older.adapter_file.endswith("_100.safetensors") and older.adapter_sha256 != tiny_model.adapter_sha256
    assert (tiny_forward(older.transformer) - tiny_forward(tiny_model.transformer)).abs().max() > 1e-3
