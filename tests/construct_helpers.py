"""Helpers for the construct tests: tiny configs written next to copies of the example prompt files, run folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "construct"


def tiny_config(folder: Path, flexible: bool = False, extra: str = "") -> Path:
    """The example tiny config (basic or flexible) and its prompt file copied into `folder`, plus `extra` YAML."""
    folder.mkdir(parents=True, exist_ok=True)
    name = "tiny-composite.construct" if flexible else "tiny.construct"
    for f in ("prompts.json", "composite.json"):
        shutil.copy(EXAMPLES / f, folder / f)
    path = folder / name
    path.write_text((EXAMPLES / name).read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def manifest(run: Path, stage: str) -> list[dict]:
    path = run / stage / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


def statuses(entries: list[dict]) -> dict[str, str]:
    """item -> its last status in a manifest slice."""
    return {e["item"]: e["status"] for e in entries}
