"""Pickles are refused for every file a load would open: weights, and the shards a `*.index.json` points to.

diffusers and transformers follow a weight index to whatever file it names (a `.bin` shard is then opened with
torch's unpickler), so a folder is checked before it is handed to them. Torch-free.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ctxgen.core.errors import ModelError

logger = logging.getLogger(__name__)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_MAX_INDEX_BYTES = 64 * 1024 * 1024


def pickled_index_targets(folder: Path) -> list[str]:
    """`index.json: shard` for every index entry (in `folder` and its sub-folders) that is not a .safetensors file."""
    bad: list[str] = []
    for index in sorted(Path(folder).rglob("*.index.json")):
        rel = index.relative_to(folder)
        try:
            if index.stat().st_size > _MAX_INDEX_BYTES:
                raise ValueError("too large")
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
            shards = set(weight_map.values()) if isinstance(weight_map, dict) else {"(not a mapping)"}
        except (OSError, ValueError, AttributeError) as exc:
            raise ModelError(f"{index}: not a readable weight index ({type(exc).__name__}); download the model "
                             "again") from None
        bad += [f"{rel}: {shard}" for shard in sorted(map(str, shards)) if not shard.endswith(".safetensors")]
    return bad


def refuse_pickled_indexes(folder: Path, what: str) -> None:
    """ModelError when a weight index in `folder` points at anything but .safetensors shards."""
    bad = pickled_index_targets(folder)
    if bad:
        raise ModelError(f"{what} {folder}: a weight index points at non-safetensors shards ({bad[0]}"
                         f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}); refusing to unpickle (loading them "
                         "can run code): use the safetensors weights")


def refuse_pickled_hub_indexes(repo_id: str, what: str) -> None:
    """Fetch only a hub repo's JSON files and refuse it if a weight index points at pickled shards."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=["*.json"]))
    except Exception as exc:  # offline, gated, missing: the loader reports it with its full hint
        logger.debug("could not fetch the index files of %s first: %s", repo_id, exc)
        return
    refuse_pickled_indexes(folder, what)
