"""Presets, device/dtype choice and base loading with one-line errors for missing weights (R21)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from ctxgen.core.errors import ModelError, UserError
from ctxgen.models.loading import load_base, load_model, missing_base_files, resolve_device, resolve_dtype
from ctxgen.models.registry import PRESETS, ModelSpec, resolve_model_spec


def _one_line_hint(message: str) -> None:
    assert "\n" not in message
    assert "hf download black-forest-labs/FLUX.1-Kontext-dev" in message
    assert "licence" in message and "hf auth login" in message


def test_default_preset_is_contextgen(monkeypatch):
    monkeypatch.delenv("CTXGEN_BASE", raising=False)
    monkeypatch.delenv("CTXGEN_ADAPTER", raising=False)
    spec = resolve_model_spec(None)
    assert spec == ModelSpec("contextgen", "black-forest-labs/FLUX.1-Kontext-dev", "ruihangxu/ContextGen")
    assert resolve_model_spec("tiny") == ModelSpec("tiny", "tiny", None)
    assert PRESETS["tiny"].builtin and not PRESETS["contextgen"].builtin


def test_explicit_args_beat_env_beat_preset(monkeypatch):
    monkeypatch.setenv("CTXGEN_BASE", "/env/base")
    monkeypatch.setenv("CTXGEN_ADAPTER", "/env/adapter")
    assert resolve_model_spec(None) == ModelSpec("contextgen", "/env/base", "/env/adapter")
    assert resolve_model_spec(None, base="/arg/base") == ModelSpec("contextgen", "/arg/base", "/env/adapter")
    assert resolve_model_spec("contextgen", adapter="none").adapter is None


def test_unknown_preset_lists_presets():
    with pytest.raises(UserError) as err:
        resolve_model_spec("flux-pro")
    assert "flux-pro" in str(err.value) and "contextgen" in str(err.value) and "tiny" in str(err.value)


def test_device_and_dtype_resolution():
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("fp16", torch.device("cpu")) == torch.float16
    with pytest.raises(UserError, match="--dtype"):
        resolve_dtype("int8", torch.device("cpu"))


def test_loaded_model_fields(tiny_model, tiny_model_dir):
    assert tiny_model.fused and tiny_model.pipe.transformer is tiny_model.transformer
    assert tiny_model.device == torch.device("cpu") and tiny_model.dtype == torch.float32
    assert tiny_model.adapter_file.endswith("contextgen_tiny_200.safetensors")
    digest = hashlib.sha256((tiny_model_dir / "adapter" / "contextgen_tiny_200.safetensors").read_bytes()).hexdigest()
    assert tiny_model.adapter_sha256 == digest
    assert (tiny_model.n_double, tiny_model.n_single) == (2, 4)
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        assert not any(m.training for m in getattr(tiny_model.pipe, name).modules()), name
    assert not any("lora" in n for n, _ in tiny_model.transformer.named_parameters())  # only fused weights remain


def test_missing_transformer_weights_named(tiny_model_dir, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir / "base", base)
    (base / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    shutil.rmtree(base / "tokenizer_2")
    assert missing_base_files(base) == ["tokenizer_2/", "transformer/*.safetensors"]
    with pytest.raises(ModelError) as err:
        load_model(ModelSpec("contextgen", str(base), None), device="cpu")
    assert "transformer/*.safetensors" in str(err.value) and "tokenizer_2/" in str(err.value)
    _one_line_hint(str(err.value))


def test_missing_shard_and_index_named(tiny_model_dir, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir / "base", base)
    weights = base / "vae" / "diffusion_pytorch_model.safetensors"
    weights.rename(base / "vae" / "diffusion_pytorch_model-00001-of-00002.safetensors")
    shards = {"a": "diffusion_pytorch_model-00001-of-00002.safetensors",
              "b": "diffusion_pytorch_model-00002-of-00002.safetensors"}  # fmt: skip
    (base / "vae" / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": shards}))
    assert missing_base_files(base) == ["vae/diffusion_pytorch_model-00002-of-00002.safetensors"]
    (base / "model_index.json").unlink()
    with pytest.raises(ModelError, match="missing model_index.json") as err:
        load_base(str(base), torch.float32)
    _one_line_hint(str(err.value))


def test_pickled_only_base_component_is_named(tiny_model_dir, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir / "base", base)
    (base / "text_encoder" / "model.safetensors").rename(base / "text_encoder" / "pytorch_model.bin")
    expected = "text_encoder/*.safetensors (only pickled weights found; ctxgen loads safetensors only)"
    assert missing_base_files(base) == [expected]


def test_hub_errors_become_one_line_model_errors(monkeypatch):
    from diffusers import FluxKontextPipeline
    from huggingface_hub.errors import LocalEntryNotFoundError

    calls = []

    def offline(source, **kwargs):
        calls.append((source, kwargs))
        raise LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder\nsecond line")

    monkeypatch.setattr(FluxKontextPipeline, "from_pretrained", offline)
    with pytest.raises(ModelError) as err:
        load_base("black-forest-labs/FLUX.1-Kontext-dev", torch.bfloat16)
    assert "LocalEntryNotFoundError" in str(err.value) and "second line" not in str(err.value)
    _one_line_hint(str(err.value))
    assert calls[0][1]["use_safetensors"] is True and calls[0][1]["local_files_only"] is None


def test_bad_base_sources(tmp_path):
    (tmp_path / "weights.safetensors").write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file"):
        load_base(str(tmp_path / "weights.safetensors"), torch.float32)
    with pytest.raises(ModelError, match="neither an existing folder nor a hub id"):
        load_base(str(tmp_path / "nowhere"), torch.float32)


def test_model_identity_matches_load_without_loading(tiny_model, tiny_model_dir, monkeypatch):
    import ctxgen.models.loading as loading

    def no_load(*args, **kwargs):
        raise AssertionError("model_identity must not load weights")

    monkeypatch.setattr(loading, "load_base", no_load)
    spec = ModelSpec("tiny", str(tiny_model_dir / "base"), str(tiny_model_dir / "adapter"))
    ident = loading.model_identity(spec, device="cpu", dtype="auto")
    assert ident.as_dict() == {
        "base": spec.base, "adapter": spec.adapter, "adapter_file": tiny_model.adapter_file,
        "adapter_sha256": tiny_model.adapter_sha256, "fused": True, "dtype": "float32", "device": "cpu",
    }  # fmt: skip
    assert loading.model_identity(ModelSpec("tiny", "tiny", None), "cpu", "bfloat16", True).fused is False


@pytest.mark.parametrize("rel", ["transformer/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"])
def test_truncated_base_weights_are_a_model_error(tiny_model_dir, tmp_path, rel):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir / "base", base)
    data = (base / rel).read_bytes()
    (base / rel).write_bytes(data[: len(data) // 2])  # an interrupted download
    with pytest.raises(ModelError) as err:
        load_base(str(base), torch.float32)
    _one_line_hint(str(err.value))
