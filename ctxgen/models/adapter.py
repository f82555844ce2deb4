"""The ContextGen LoRA adapter: find the file, refuse pickles, check it fits, load via peft, fuse (R21; docs/spec.md)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ctxgen.core.errors import ModelError
from ctxgen.core.fsio import sha256_file
from ctxgen.core.hub import is_hub_id
from ctxgen.models.safety import PICKLE_SUFFIXES

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ADAPTER_NAME = "contextgen"
_STEP_RE = re.compile(r"_(\d+)\.safetensors$")
_MAX_NAMED = 3  # how many offending keys/files an error message names


@dataclass(frozen=True)
class AdapterWeights:
    """A LoRA file read from safetensors, converted to diffusers keys (`transformer.`-prefixed)."""

    path: Path
    state_dict: dict  # str -> torch.Tensor, without alpha entries
    alphas: dict  # network alphas found in the file (kohya/legacy style), else empty
    metadata: dict | None  # diffusers `lora_adapter_metadata` from the safetensors header, if any
    sha256: str


def _refuse_pickle(path: Path) -> ModelError:
    """Pickled weights are refused by name; any other non-.safetensors file is simply not an adapter."""
    if path.suffix.lower() not in PICKLE_SUFFIXES:
        return ModelError(f"adapter {path}: not a safetensors file; pass the adapter's .safetensors file "
                          "(or a folder or hub id holding it)")
    return ModelError(
        f"adapter {path}: refusing to unpickle '{path.suffix or path.name}' weights (loading them can run code); "
        "convert to safetensors (safetensors.torch.save_file) and pass the .safetensors file"
    )


def pick_adapter_file(folder: Path) -> Path:
    """The folder's `*_<step>.safetensors` with the highest step, else its only .safetensors file (R21)."""
    try:
        files = sorted(p for p in folder.rglob("*.safetensors") if p.is_file())
        pickles = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES) if not files else []
    except OSError as exc:
        reason = exc.strerror or exc
        raise ModelError(f"adapter folder {folder}: cannot list it ({reason}); check its permissions") from None
    if not files:
        if pickles:
            raise _refuse_pickle(pickles[0])
        raise ModelError(f"adapter folder {folder}: no .safetensors file in it; pass --adapter FILE.safetensors")
    stepped = [(int(m.group(1)), p) for p in files if (m := _STEP_RE.search(p.name))]
    if stepped:
        top = max(step for step, _ in stepped)
        best = [p for step, p in stepped if step == top]
        if len(best) == 1:
            return best[0]
        names = ", ".join(p.name for p in best[:_MAX_NAMED])
        raise ModelError(
            f"adapter folder {folder}: several files share the highest step {top} ({names}); pass one file"
        )
    if len(files) == 1:
        return files[0]
    names = ", ".join(str(p.relative_to(folder)) for p in files[:_MAX_NAMED])
    raise ModelError(
        f"adapter folder {folder}: {len(files)} .safetensors files and none named *_<step> ({names}); pass one file"
    )


def _download_adapter(repo_id: str) -> Path:
    """snapshot_download the hub repo's .safetensors files (honours HF_HUB_OFFLINE)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=repo_id, allow_patterns=["*.safetensors"]))
    except (OSError, ValueError, EntryNotFoundError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"adapter '{repo_id}': cannot fetch it from the hub ({type(exc).__name__}: {reason}); "
            f"run `hf download {repo_id}` while online, or pass --adapter PATH to a local .safetensors file or folder"
        ) from None


def resolve_adapter_file(source: str) -> Path:
    """A hub id, a folder or a single .safetensors file -> the one .safetensors file to load (R21)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return pick_adapter_file(path)
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise _refuse_pickle(path)
        return path
    if is_hub_id(source):
        return pick_adapter_file(_download_adapter(source))
    raise ModelError(f"--adapter: '{source}' is neither an existing file or folder nor a hub id (owner/name)")


_SHA_CACHE: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> sha256


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so identity and loading hash a big adapter once."""
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _SHA_CACHE:
            _SHA_CACHE[key] = sha256_file(path, chunk=1 << 24)
    except OSError as exc:
        reason = exc.strerror or exc
        raise ModelError(f"adapter {path}: cannot read it ({reason}); check the path and its permissions") from None
    return _SHA_CACHE[key]


def read_adapter(pipe, path: Path) -> AdapterWeights:
    """Read a .safetensors LoRA (never a pickle) and convert its keys with the pipeline's LoRA parser."""
    import safetensors
    import safetensors.torch

    if path.suffix.lower() != ".safetensors":
        raise _refuse_pickle(path)
    try:
        raw = safetensors.torch.load_file(str(path), device="cpu")
        with safetensors.safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
        metadata = json.loads(header["lora_adapter_metadata"]) if header.get("lora_adapter_metadata") else None
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ModelError(
            f"adapter {path}: not a readable safetensors file ({type(exc).__name__}: {first}); download it again"
        ) from None
    if metadata is not None and not isinstance(metadata, dict):
        raise ModelError(f"adapter {path}: its lora_adapter_metadata header is not a JSON object; "
                         "the file was not written by a LoRA trainer, pass the real adapter")
    if not raw:
        raise ModelError(f"adapter {path}: the file holds no tensors; download it again")
    _check_values(path, raw)
    try:
        state_dict, alphas = pipe.lora_state_dict(raw, return_alphas=True)
    except (ValueError, KeyError) as exc:
        raise ModelError(f"adapter {path}: not a FLUX LoRA the loader understands ({exc})") from None
    return AdapterWeights(path, dict(state_dict), dict(alphas or {}), metadata, file_sha256(path))


def _check_values(path: Path, tensors: dict) -> None:
    """Refuse integer tensors and NaN/inf values: loaded as-is they give an error deep in peft or a ruined image."""
    import torch

    allowed = (torch.float32, torch.float16, torch.bfloat16)
    for key, tensor in tensors.items():
        if tensor.dtype not in allowed:  # ints, and float8 (no isfinite, no LoRA merge on CPU)
            raise ModelError(f"adapter {path}: tensor {key} has dtype {str(tensor.dtype).removeprefix('torch.')}; "
                             "LoRA weights are floating point (float32, float16 or bfloat16), pass the real adapter")
        if not bool(torch.isfinite(tensor).all()):
            raise ModelError(f"adapter {path}: tensor {key} holds NaN or infinite values; the file is damaged, "
                             "download it again")


def _key_problem(key: str, tensor: torch.Tensor, modules: dict) -> str | None:
    """Why one adapter key does not fit the transformer, or None when it fits."""
    import torch

    if not key.startswith("transformer."):
        return f"{key} (not a transformer weight)"
    path, sep, tail = key[len("transformer.") :].partition(".lora_")
    if not sep:
        return f"{key} (not a LoRA weight)"
    module = modules.get(path)
    linear = getattr(module, "base_layer", module)
    if not isinstance(linear, torch.nn.Linear):
        return f"{key} (the transformer has no Linear '{path}')"
    expected = {
        "A.weight": (None, linear.in_features),
        "B.weight": (linear.out_features, None),
        "B.bias": (linear.out_features,),
    }.get(tail)
    if expected is None:
        return f"{key} (unsupported LoRA entry 'lora_{tail}')"
    shape = tuple(tensor.shape)
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
        want = "x".join("r" if e is None else str(e) for e in expected)
        return f"{key} (shape {'x'.join(map(str, shape))}, the base needs {want})"
    return None


def check_adapter_fits(weights: AdapterWeights, transformer, base_id: str) -> None:
    """Raise ModelError naming keys whose module is missing or whose shape differs from the base (R21)."""
    modules = dict(transformer.named_modules())
    problems = [p for k, t in weights.state_dict.items() if (p := _key_problem(k, t, modules))]
    ranks: dict[str, set[int]] = {}
    for key, tensor in weights.state_dict.items():
        if key.endswith(".lora_A.weight"):
            ranks.setdefault(key[: -len(".lora_A.weight")], set()).add(int(tensor.shape[0]))
        elif key.endswith(".lora_B.weight") and tensor.ndim == 2:
            ranks.setdefault(key[: -len(".lora_B.weight")], set()).add(int(tensor.shape[1]))
    problems += [f"{name}.lora_A/B (ranks {sorted(r)} differ)" for name, r in ranks.items() if len(r) > 1]
    if not any(k.endswith(".lora_A.weight") for k in weights.state_dict):
        problems.append("(no lora_A weights at all)")
    if problems:
        named = "; ".join(problems[:_MAX_NAMED])
        raise ModelError(
            f"adapter {weights.path} does not fit base '{base_id}': {len(problems)} mismatched keys, e.g. {named}; "
            "pass the adapter trained for this base"
        )


def inject_adapter(pipe, weights: AdapterWeights) -> None:
    """Load the LoRA into the transformer as separate peft layers named `contextgen`."""
    try:
        pipe.load_lora_into_transformer(
            dict(weights.state_dict),
            network_alphas=None if weights.metadata else (weights.alphas or None),
            transformer=pipe.transformer,
            adapter_name=ADAPTER_NAME,
            metadata=weights.metadata,
            low_cpu_mem_usage=True,  # no random init of r=512 matrices that are overwritten at once
        )
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:  # peft's own checks, after ours passed
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"adapter {weights.path}: peft could not load it ({type(exc).__name__}: {first}); "
                         "pass the adapter trained for this base") from None


def attach_adapter(pipe, weights: AdapterWeights, base_id: str, fuse: bool) -> None:
    """Check, load through peft and (by default) fuse then unload so only fused weights remain (R21)."""
    check_adapter_fits(weights, pipe.transformer, base_id)
    inject_adapter(pipe, weights)
    if fuse:
        pipe.fuse_lora(components=["transformer"], lora_scale=1.0, adapter_names=[ADAPTER_NAME])
        pipe.unload_lora_weights()
    logger.info("adapter %s loaded (%s)", weights.path, "fused" if fuse else "separate")
