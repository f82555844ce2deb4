"""Are the weights a run needs here (or reachable)? Base and adapter are checked together, before anything loads,
so a missing model is one message that says what is missing and how to get it.

Hub ids are looked up in the Hugging Face cache first, then (unless HF_HUB_OFFLINE is set) asked of the hub with a
short timeout, without downloading weights; local folders and files are checked by the loader itself. Torch-free.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ctxgen.core.errors import ModelError
from ctxgen.core.hub import is_hub_id
from ctxgen.models.registry import BASE_HUB_ID, TINY, ModelSpec

logger = logging.getLogger(__name__)
HUB_TIMEOUT_S = 10.0
_TRUE = {"1", "ON", "YES", "TRUE"}


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def _cached(repo_id: str) -> Path | None:
    """The newest cached snapshot folder of a model repo, or None (no network)."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    snaps = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    return snaps[-1] if snaps else None


def _hub_problem(repo_id: str) -> str | None:
    """Why a hub repo cannot be downloaded now, or None when it can (asks the hub; downloads nothing)."""
    if offline():
        return "not in the Hugging Face cache (HF_HUB_OFFLINE is set)"
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        return f"gated on the hub (accept its licence at https://huggingface.co/{repo_id}, then `hf auth login`)"
    except RepositoryNotFoundError:
        return "not found on the hub (check the id, or log in with `hf auth login` if it is private)"
    except Exception as exc:  # no network, DNS, proxy, timeout: all mean "cannot download it now"
        logger.debug("hub lookup of %s failed: %r", repo_id, exc)
        return f"not in the Hugging Face cache and the hub cannot be reached ({type(exc).__name__})"
    return None


def hub_problem(kind: str, ident: str | None) -> str | None:
    """Why a hub-id base or adapter cannot be loaded, or None (local paths are the loader's to check)."""
    if ident is None or ident == TINY or Path(ident).expanduser().exists() or not is_hub_id(ident):
        return None
    snapshot = _cached(ident)
    if snapshot is not None and any(snapshot.rglob("*.safetensors")):
        return None
    why = _hub_problem(ident)
    return f"{kind} '{ident}' is {why}" if why else None


def check_weights(spec: ModelSpec) -> None:
    """One ModelError naming every hub model that is neither cached nor downloadable now, and how to get it."""
    found = {kind: why for kind, ident in (("base", spec.base), ("adapter", spec.adapter))
             if (why := hub_problem(kind, ident))}
    if not found:
        return
    fetch = " and ".join(f"`hf download {ident}`" for kind, ident in (("base", spec.base), ("adapter", spec.adapter))
                         if kind in found)
    licence = (f" (accept the licence at https://huggingface.co/{BASE_HUB_ID} and run `hf auth login` first)"
               if spec.base == BASE_HUB_ID and "base" in found else "")
    raise ModelError(f"model weights are not available: {'; '.join(found.values())}; get them with {fetch}{licence}, "
                     "or pass --base PATH / --adapter PATH to local copies (a diffusers folder; an adapter "
                     ".safetensors file or folder)")
