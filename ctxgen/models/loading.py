"""Load FLUX.1-Kontext (hub, local diffusers folder, or tiny) plus the ContextGen adapter (R13, R21)."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctxgen.core.errors import ModelError, UsageError, UserError
from ctxgen.core.hub import is_hub_id
from ctxgen.core.options import DTYPE_ALIASES, DTYPE_CHOICES, choose
from ctxgen.models.adapter import (ADAPTER_NAME, attach_adapter, file_sha256, inject_adapter, read_adapter,
                                   resolve_adapter_file)
from ctxgen.models.registry import BASE_HUB_ID, TINY, ModelIdentity, ModelSpec
from ctxgen.models.safety import refuse_pickled_hub_indexes, refuse_pickled_indexes

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

_COMPONENTS = ("scheduler", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "transformer")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "spiece.model")
_GET_WEIGHTS = (
    f"get the weights with `hf download {BASE_HUB_ID}` (accept the FLUX.1-Kontext-dev licence on the hub "
    "and run `hf auth login` first), or pass --base PATH to a local copy in the diffusers layout"
)


@dataclass(frozen=True)
class LoadedModel:
    """The pipeline whose parts ctxgen reuses (never its __call__), and where the weights came from."""

    pipe: Any  # diffusers.FluxKontextPipeline
    transformer: Any  # diffusers.FluxTransformer2DModel (= pipe.transformer)
    device: torch.device
    dtype: torch.dtype
    base_id: str
    adapter_id: str | None
    adapter_file: str | None  # the .safetensors file actually loaded
    adapter_sha256: str | None
    fused: bool  # True: LoRA merged into the base weights; False: separate peft layers (or no adapter)
    n_double: int
    n_single: int
    memory: str = "full"  # memory tier: full | balanced | low (ctxgen.memory)


def resolve_device(device: str = "auto") -> torch.device:
    """auto -> cuda, then mps, then cpu; an explicit device must be cpu, cuda[:N] or mps, and available."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device: '{device}' is not a device ctxgen runs on; use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device: '{device}' asked for but CUDA is not available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(f"--device: '{device}' does not exist ({torch.cuda.device_count()} CUDA GPU(s) visible)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device: '{device}' asked for but MPS is not available; use --device cpu")
    return dev


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """auto -> bfloat16 on a GPU, float32 on CPU."""
    import torch

    name = choose("--dtype", dtype, DTYPE_CHOICES, "dtype", DTYPE_ALIASES)
    if name == "auto":
        return torch.float32 if device.type == "cpu" else torch.bfloat16
    return getattr(torch, name)


def _missing_weights(sub: Path) -> list[str]:
    """Weight files a model component folder lacks (safetensors only; shards from the index)."""
    indexes = sorted(sub.glob("*.safetensors.index.json"))
    if indexes:
        weight_map = json.loads(indexes[0].read_text(encoding="utf-8")).get("weight_map", {})
        return [f"{sub.name}/{s}" for s in sorted(set(weight_map.values())) if not (sub / s).is_file()]
    if any(sub.glob("*.safetensors")):
        return []
    if any(p.suffix in (".bin", ".pt", ".ckpt") for p in sub.iterdir()):
        return [f"{sub.name}/*.safetensors (only pickled weights found; ctxgen loads safetensors only)"]
    return [f"{sub.name}/*.safetensors"]


def missing_base_files(root: Path) -> list[str]:
    """Files a local FLUX.1-Kontext folder in the diffusers layout lacks, relative to it."""
    index_file = root / "model_index.json"
    if not index_file.is_file():
        return ["model_index.json"]
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ["model_index.json (unreadable)"]
    missing: list[str] = []
    for name in _COMPONENTS:
        sub = root / name
        if not isinstance(index.get(name), list) or index[name][0] is None:
            missing.append(f"model_index.json entry '{name}'")
        elif not sub.is_dir():
            missing.append(f"{name}/")
        elif name == "scheduler":
            missing += [] if (sub / "scheduler_config.json").is_file() else ["scheduler/scheduler_config.json"]
        elif name.startswith("tokenizer"):
            missing += [] if any((sub / f).is_file() for f in _TOKENIZER_FILES) else [f"{name}/tokenizer.json"]
        else:
            missing += [] if (sub / "config.json").is_file() else [f"{name}/config.json"]
            missing += _missing_weights(sub)
    return missing


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


@contextmanager
def _quiet_progress():
    """Silence diffusers' and transformers' loading progress bars for one call, then restore them."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    was = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if was[0]:
            dlog.enable_progress_bar()
        if was[1]:
            tlog.enable_progress_bar()


def _from_pretrained(source: str, dtype: torch.dtype, local: bool, quantization: Any = None):
    """FluxKontextPipeline.from_pretrained (safetensors only), hub and loader errors -> one-line ModelError."""
    from diffusers import FluxKontextPipeline
    from diffusers.utils import deprecation_utils
    from huggingface_hub.errors import EntryNotFoundError
    from safetensors import SafetensorError

    # diffusers renamed torch_dtype to dtype (0.42); use whichever this version takes without a warning
    dtype_kw = "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
    extra = {} if quantization is None else {"quantization_config": quantization}
    try:
        with _quiet_progress():
            return FluxKontextPipeline.from_pretrained(
                source, use_safetensors=True, local_files_only=local or None, **{dtype_kw: dtype}, **extra
            )
    except (OSError, ValueError, EntryNotFoundError, SafetensorError) as exc:  # missing, partial, gated, offline
        raise ModelError(f"cannot load base '{source}' ({_first_line(exc)}); {_GET_WEIGHTS}") from None


def load_base(base: str, dtype: torch.dtype, quantization: Any = None):
    """`tiny` (built in memory), a local diffusers folder, or a hub id -> FluxKontextPipeline (quantised at load)."""
    if base == TINY:
        if quantization is not None:
            raise UserError("--memory low: the tiny base is built in memory and cannot be quantised; use full")
        import torch
        from diffusers import FluxKontextPipeline

        from ctxgen.models.tiny import build_tiny_components

        pipe = FluxKontextPipeline(**build_tiny_components())
        return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)
    path = Path(base).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"--base: {path} is a file; pass a folder in the diffusers layout or a hub id")
        refuse_pickled_indexes(path, "base folder")
        missing = missing_base_files(path)
        if missing:
            shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            raise ModelError(f"base folder {path} is incomplete: missing {shown}; {_GET_WEIGHTS}")
        return _from_pretrained(str(path), dtype, local=True, quantization=quantization)
    if is_hub_id(base):
        refuse_pickled_hub_indexes(base, "base")
        return _from_pretrained(base, dtype, local=False, quantization=quantization)
    raise ModelError(f"--base: '{base}' is neither an existing folder nor a hub id (owner/name); {_GET_WEIGHTS}")


def _place(pipe, dev: torch.device, memory: str) -> None:
    """full: every component on the device; balanced: the transformer (the rest streams later, ctxgen.memory);
    low: the VAE and CLIP, as bitsandbytes already put the NF4 transformer and T5 on the GPU while loading."""
    if memory == "full":
        pipe.to(dev)
    elif memory == "balanced":
        pipe.transformer.to(dev)
    else:
        pipe.vae.to(dev)
        pipe.text_encoder.to(dev)


def load_model(
    spec: ModelSpec, device: str = "auto", dtype: str = "auto", fuse: bool = True, memory: str = "full"
) -> LoadedModel:
    """Base pipeline placed for the memory tier; adapter checked, loaded through peft, fused unless fuse=False (R21)."""
    from ctxgen.models.memory import check_memory_tier, low_memory_quantization, offload_idle

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    check_memory_tier(memory, dev)
    adapter_file = resolve_adapter_file(spec.adapter) if spec.adapter else None  # fail fast before the base
    if memory == "low" and dev.index is not None:
        import torch

        torch.cuda.set_device(dev)  # bitsandbytes quantises onto the current CUDA device
    pipe = load_base(spec.base, torch_dtype, low_memory_quantization(torch_dtype) if memory == "low" else None)
    _place(pipe, dev, memory)
    pipe.set_progress_bar_config(disable=True)
    sha = None
    if adapter_file is not None:
        weights = read_adapter(pipe, adapter_file)
        attach_adapter(pipe, weights, spec.base, fuse)
        sha = weights.sha256
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        getattr(pipe, name).eval()
    if memory == "balanced":  # after the adapter: diffusers' LoRA loader strips and re-creates offload hooks
        offload_idle(pipe, dev)
    cfg = pipe.transformer.config
    logger.info("model: base %s, adapter %s, %s %s, memory %s", spec.base, adapter_file, dev, torch_dtype, memory)
    return LoadedModel(
        pipe=pipe,
        transformer=pipe.transformer,
        device=dev,
        dtype=torch_dtype,
        base_id=spec.base,
        adapter_id=spec.adapter,
        adapter_file=None if adapter_file is None else str(adapter_file),
        adapter_sha256=sha,
        fused=adapter_file is not None and fuse,
        n_double=int(cfg.num_layers),
        n_single=int(cfg.num_single_layers),
        memory=memory,
    )


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def model_identity(spec: ModelSpec, device: str = "auto", dtype: str = "auto", fuse: bool = True) -> ModelIdentity:
    """What load_model would load, without loading weights: ids, adapter file + sha256, fused, dtype, device."""
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    adapter_file = resolve_adapter_file(spec.adapter) if spec.adapter else None
    return ModelIdentity(
        base=spec.base,
        adapter=spec.adapter,
        adapter_file=None if adapter_file is None else str(adapter_file),
        adapter_sha256=None if adapter_file is None else file_sha256(adapter_file),
        fused=adapter_file is not None and fuse,
        dtype=dtype_name(torch_dtype),
        device=str(dev),
    )


def localize_identity(identity: ModelIdentity, device: str, dtype: str) -> ModelIdentity:
    """A parent's model identity with this worker's device and dtype (the key ignores the device, not the dtype)."""
    dev = resolve_device(device)
    return identity.on(str(dev), dtype_name(resolve_dtype(dtype, dev)))


def unfuse_adapter(model: LoadedModel) -> LoadedModel:
    """Take a fused adapter back out of the weights and keep it as separate LoRA layers (R21); mutates model.pipe."""
    import torch
    from peft.tuners.lora import LoraLayer

    if not model.fused or model.adapter_file is None:
        raise ValueError("unfuse_adapter needs a model loaded with a fused adapter")
    pipe = model.pipe
    weights = read_adapter(pipe, Path(model.adapter_file))
    inject_adapter(pipe, weights)
    with torch.no_grad():
        for module in pipe.transformer.modules():
            if isinstance(module, LoraLayer) and ADAPTER_NAME in module.lora_A:
                module.merged_adapters = [ADAPTER_NAME]  # the base weights already hold this adapter
                module.unmerge()  # peft subtracts exactly what its merge added
    pipe.transformer.eval()
    return replace(model, fused=False)
