"""Where a role's weights come from: a local folder or a hub id (cache only unless the hub is allowed).

Only safetensors are read; a folder without them is refused with a one-line message naming the role.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxgen.core.errors import ModelError
from ctxgen.core.hub import is_hub_id

log = logging.getLogger(__name__)
PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


@dataclass(frozen=True)
class Source:
    """A model source: `value` as given, `ident` for cache keys, `folder` once resolved."""

    role: str
    value: str
    ident: str
    folder: Path | None = None


def model_source(role: str, value: str, hub: bool) -> Source:
    """A hub id or folder -> a local folder with safetensors (downloaded only when `hub` is allowed)."""
    path = Path(value).expanduser()
    if path.is_dir():
        folder = path.resolve()
        ident = str(folder)
    elif is_hub_id(value) and not path.exists():
        folder, ident = _snapshot(role, value, hub), value
    else:
        raise ModelError(f"{role}: {value!r} is neither a local folder nor a hub id (owner/name); "
                         "fix it in EVAL.yaml or --models")
    if not any(folder.glob("*.safetensors")):
        raise ModelError(f"{role}: {folder} has no *.safetensors weights (pickled .bin/.pt files are never "
                         "loaded); convert them with safetensors.torch.save_file or pick another model")
    return Source(role, value, ident, folder)


def _snapshot(role: str, hub_id: str, hub: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return Path(snapshot_download(hub_id, allow_patterns=PATTERNS, local_files_only=not hub))
    except (HfHubHTTPError, OSError, ValueError) as exc:
        log.debug("snapshot_download(%s) failed: %s", hub_id, exc)
        how = "check the id and your network" if hub else "pass --hub to allow downloading, or a local folder"
        raise ModelError(f"{role}: {hub_id} is not in the Hugging Face cache ({type(exc).__name__}); {how}") \
            from exc


def load_pretrained(cls: Any, source: Source, **kwargs: Any) -> Any:
    """`cls.from_pretrained(folder, use_safetensors=True)`, any failure as one ModelError line."""
    try:
        return cls.from_pretrained(source.folder, use_safetensors=True, **kwargs)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{source.role}: cannot load {source.value} as {cls.__name__} ({first[:200]})") from exc


def pil_processor(auto_cls: Any, source: Source, folder: Path | None = None) -> Any:
    """A transformers processor with the PIL/numpy image backend (E3: the slow processors' exact numbers)."""
    where = folder or source.folder
    try:
        return auto_cls.from_pretrained(where, backend="pil")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{source.role}: cannot load the processor of {where} ({exc})") from exc


def torch_device(device: str) -> Any:
    import torch

    return torch.device(device)
