"""The run folder: one folder per stage, one item per prompt, written atomically; keys; the stage manifests.

`RUN/<stage>/<id>/` holds an item's files and `item.json` (written last: it marks the item done). `item.json`
records the item's key, whether it was kept (and the rejection reason), its data and the sha256 of every file it
wrote. A key hashes the stage, its settings, its model ids and the upstream item (its key and file hashes), so a
re-run skips an item only when nothing it depends on changed. `RUN/<stage>/manifest.jsonl` gets one line per item
per run: ok / skipped / failed, kept or the rejection reason, the error, seconds. Torch-free.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctxgen.batch.manifest import Manifest
from ctxgen.core.errors import OutputError
from ctxgen.core.fsio import clean_stale_parts, write_bytes, write_json

ITEM = "item.json"
MANIFEST = "manifest.jsonl"
FORMAT = "ctxgen-construct-item"


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Item:
    """One item of one stage: what a stage function returns (files as encoded bytes) and what item.json holds."""

    id: str
    data: dict = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    kept: bool = True
    reason: str | None = None


@dataclass(frozen=True)
class Done:
    """A finished item as read back from its item.json."""

    id: str
    key: str
    folder: Path
    kept: bool
    reason: str | None
    data: dict
    hashes: dict[str, str]

    def path(self, name: str) -> Path:
        return self.folder / name

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def fingerprint(self) -> dict:
        """What downstream keys hash: this item's key and the hashes of its files."""
        return {"key": self.key, "files": self.hashes}


class StageStore:
    """The folder of one stage in a run."""

    def __init__(self, run: Path, stage: str):
        self.run, self.stage = Path(run), stage
        self.folder = self.run / stage

    def prepare(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.folder}: cannot write here ({exc.strerror}); choose another run folder") \
                from None
        clean_stale_parts(self.folder)

    def item_folder(self, item_id: str) -> Path:
        return self.folder / item_id

    def done(self, item_id: str) -> Done | None:
        """The finished item, or None when absent, damaged or missing one of its files."""
        folder = self.item_folder(item_id)
        try:
            doc = json.loads((folder / ITEM).read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                return None
            hashes = {str(k): str(v) for k, v in doc.get("files", {}).items()}
            sizes = doc.get("sizes", {})
            if any((folder / n).stat().st_size != sizes.get(n) for n in hashes):
                return None
            return Done(doc["id"], doc["key"], folder, bool(doc["kept"]), doc.get("reason"), doc.get("data", {}),
                        hashes)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, item: Item, key: str) -> Done:
        """The item's files (each atomic), then item.json last."""
        folder = self.item_folder(item.id)
        folder.mkdir(parents=True, exist_ok=True)
        hashes, sizes = {}, {}
        for name, data in item.files.items():
            write_bytes(folder / name, data)
            hashes[name], sizes[name] = hashlib.sha256(data).hexdigest(), len(data)
        doc = {"format": FORMAT, "id": item.id, "stage": self.stage, "key": key, "kept": item.kept,
               "reason": item.reason, "data": item.data, "files": hashes, "sizes": sizes}
        write_json(folder / ITEM, doc)
        return Done(item.id, key, folder, item.kept, item.reason, item.data, hashes)

    def ids(self) -> list[str]:
        """Every finished item id of this stage, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.parent.name for p in self.folder.glob(f"*/{ITEM}"))

    def log(self, entry: dict) -> None:
        """Append one manifest line (one write, fsync), like `ctxgen render --manifest`."""
        Manifest(self.folder / MANIFEST, hint="free disk space").append_json({"time": round(time.time(), 3), **entry})

    def manifest(self) -> list[dict]:
        path = self.folder / MANIFEST
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line of a killed run
        return out


def png(image: Any) -> bytes:
    """A PIL image or uint8 array (h, w[, c]) as PNG bytes."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def mask_png(mask: np.ndarray) -> bytes:
    """A boolean mask as a 1-bit PNG (IMIG's mask files)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=bool)).save(buf, format="PNG")
    return buf.getvalue()


def read_rgb(data: bytes, name: str) -> np.ndarray:
    """uint8 (h, w, 3) through the safe decoder (pixel cap, R2 conversions)."""
    from ctxgen.scene.images import image_from_bytes

    rgb = image_from_bytes(data, name)
    return rgb[..., :3] if rgb.shape[-1] == 4 else rgb


def read_mask(data: bytes, name: str) -> np.ndarray:
    from ctxgen.scene.images import mask_from_bytes

    return mask_from_bytes(data, name) >= 128
