"""One seed's output set (image, sidecar, debug overlays), replaced so that nothing is lost.

Every new file is first written completely under a temp name beside its target; only then are they moved into
place: the overlay folder (swapped atomically with the old one where the file system allows), the sidecar, and the
image last. Each file of the set carries the output key, and a set counts as done only when the image, the sidecar
and (when asked for) every overlay carry the same key: a run killed while moving files leaves the old image in
place and a set that the next run renders again, never a set it wrongly skips. A failure before the moves leaves
the old set untouched.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ctxgen.core import fsio
from ctxgen.core.errors import OutputError

log = logging.getLogger(__name__)

KEY_CHUNK = "ctxgen-key"  # tEXt chunk of every overlay PNG: the key of the render it belongs to
_RENAME_EXCHANGE = 2


@dataclass(frozen=True)
class OutputSet:
    """The encoded files of one seed: image PNG bytes, sidecar JSON bytes, overlays by name (PNG bytes)."""

    image: bytes
    sidecar: bytes
    overlays: Mapping[str, bytes] | None  # None: no debug overlays for this run


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE) (Linux >= 3.15); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        at_fdcwd = -100
        rc = libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    except (OSError, AttributeError):
        return False
    return rc == 0


def _stage_overlays(folder: Path, overlays: Mapping[str, bytes]) -> Path:
    """The new overlay folder, complete, under a temp name beside `folder`."""
    tmp = Path(tempfile.mkdtemp(prefix=fsio.part_prefix(folder), suffix=fsio.PART, dir=folder.parent))
    try:
        os.chmod(tmp, fsio.dir_mode())
        for name, data in overlays.items():
            fsio.write_bytes(tmp / f"{name}.png", data)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _place_folder(staged: Path, folder: Path) -> None:
    """Put the staged folder at `folder`: an atomic swap with the old one, or (elsewhere) move aside then in."""
    if folder.exists() and _exchange(staged, folder):
        shutil.rmtree(staged, ignore_errors=True)  # `staged` now holds the old overlays
        return
    if folder.exists():
        aside = Path(tempfile.mkdtemp(prefix=fsio.part_prefix(folder), suffix=fsio.PART, dir=folder.parent))
        os.rmdir(aside)
        os.replace(folder, aside)
        os.replace(staged, folder)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staged, folder)


def commit(png: Path, outputs: OutputSet) -> list[Path]:
    """Write one seed's set (module docstring); returns the paths written, image first."""
    png = Path(png)
    debug, sidecar = png.with_suffix(".debug"), png.with_suffix(".json")
    staged_json = staged_png = staged_dir = None
    try:
        staged_json = fsio.stage(sidecar, lambda fh: fh.write(outputs.sidecar))
        staged_png = fsio.stage(png, lambda fh: fh.write(outputs.image))
        if outputs.overlays is not None:
            staged_dir = _stage_overlays(debug, outputs.overlays)
            try:
                _place_folder(staged_dir, debug)
            except OSError as exc:
                raise OutputError(f"{debug}: write failed ({exc.strerror or exc}); free disk space or choose "
                                  "another --out") from exc
            staged_dir = None
        fsio.publish(staged_json, sidecar)
        staged_json = None
        fsio.publish(staged_png, png)  # the image last: its key marks the seed done
        staged_png = None
    finally:
        fsio.discard(staged_json)
        fsio.discard(staged_png)
        if staged_dir is not None:
            shutil.rmtree(staged_dir, ignore_errors=True)
    written = [png, sidecar]
    if outputs.overlays is not None:
        written += [debug / f"{name}.png" for name in outputs.overlays]
    return written


def read_key(path: Path) -> str | None:
    """The key an overlay PNG or a sidecar JSON carries, or None when it is absent or unreadable."""
    try:
        if path.suffix == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            return doc.get("key") if isinstance(doc, dict) and isinstance(doc.get("key"), str) else None
        from PIL import Image

        with Image.open(path) as im:
            key = getattr(im, "text", {}).get(KEY_CHUNK)
        return key if isinstance(key, str) else None
    except (OSError, ValueError, SyntaxError):
        return None


def set_done(png: Path, key: str, image_key: str | None, overlay_names: list[str] | None) -> bool:
    """True when the image (its key read by the caller), the sidecar and the expected overlays all carry `key`."""
    if image_key != key or read_key(png.with_suffix(".json")) != key:
        return False
    debug = png.with_suffix(".debug")
    return overlay_names is None or all(read_key(debug / f"{name}.png") == key for name in overlay_names)

