"""Per-image results, cached under the run's out dir by (image sha256, case, models, options), written atomically."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from ctxgen.core.fsio import sha256_file, write_json

log = logging.getLogger(__name__)


def image_key(bench: str, image: Path, case_fingerprint: str, idents: dict[str, str], options: dict) -> str:
    """sha256 of everything that decides an image's record: its bytes, its case, the role models, the options."""
    payload = json.dumps({"bench": bench, "image": sha256_file(image), "case": case_fingerprint,
                          "models": idents, "options": options}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResultCache:
    """`<out>/cache/<k[:2]>/<k>.json`; unreadable entries count as absent."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable cached result, recomputing (%s)", p, exc)
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        write_json(self.path(key), record)
