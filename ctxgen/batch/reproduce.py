"""`ctxgen reproduce IMAGE.png`: render again from an image's own metadata and compare the pixels."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ctxgen.core.errors import UserError
from ctxgen.outputs.metadata import read_metadata, scene_files


@contextmanager
def scene_from_metadata(meta: dict[str, Any], png: Path) -> Iterator[Path]:
    """The scene file the image was rendered from; its embedded text when the file changed or is gone."""
    src = Path(meta["scene_file"])
    if src.is_file() and hashlib.sha256(src.read_bytes()).hexdigest() == meta["scene_sha256"]:
        yield src
        return
    if not src.parent.is_dir():
        raise UserError(f"{png}: its scene folder {src.parent} is gone; the references are needed to render again")
    fd, tmp = tempfile.mkstemp(prefix=f".{src.stem}.", suffix=".yaml", dir=src.parent)  # relative paths resolve as before
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(meta["scene_yaml"])
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def check_files(meta: dict[str, Any], scene, png: Path) -> None:
    """Every reference, mask and layout must still have the bytes the image was rendered from."""
    now = scene_files(scene)
    for path, digest in meta["files"].items():
        if now.get(path) != digest:
            raise UserError(f"{png}: {path} changed or is missing since this image was rendered; restore it to reproduce")


def reproduce(png: Path, out: Path) -> dict[str, Any]:
    """Render the image's seed again with its recorded settings; returns paths and the pixel difference."""
    from PIL import Image

    from ctxgen.batch.job import SceneWorker
    from ctxgen.batch.types import BatchOptions
    from ctxgen.outputs.metadata import RenderSettings
    from ctxgen.scene.model import load_scene

    meta = read_metadata(png)
    if not meta or "settings" not in meta:
        raise UserError(f"{png}: no ctxgen metadata in this file; pass a seed-<N>.png written by `ctxgen render`")
    settings = RenderSettings(**meta["settings"])
    opts = BatchOptions(out=out, base=settings.base, adapter=settings.adapter or "none", seeds=(meta["seed"],),
                        render=settings.options(), device=settings.device, overlays=False, force=True)
    with scene_from_metadata(meta, png) as path:
        scene = load_scene(path)
        check_files(meta, scene, png)
        worker = SceneWorker(opts)
        (record,) = worker.render_scene(scene, out / Path(meta["scene_file"]).stem)
    new = Path(record.outputs[0])
    a = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(new).convert("RGB"), dtype=np.int16)
    return {"original": str(png), "reproduced": str(new), "identical": bool(np.array_equal(a, b)),
            "max_abs_diff": int(np.abs(a - b).max())}
