"""Telling a Hugging Face hub id (`owner/name`) from a local path. Torch-free."""

from __future__ import annotations

import re

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def is_hub_id(text: str) -> bool:
    """True for `owner/name` (one slash, no leading `.`, `/` or `~`, not a weights file name)."""
    return bool(_HUB_ID.fullmatch(text)) and not text.lower().endswith(_WEIGHT_SUFFIXES)
