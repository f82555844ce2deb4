"""`ctxgen reproduce IMAGE.png`: render again from an image's own metadata and compare the pixels.

The metadata is untrusted input: it is validated field by field first, and nothing is written anywhere but under
`--out` (the scene text is parsed in memory when the scene file changed or is gone; no temp file is written beside
it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ctxgen.core.errors import UserError
from ctxgen.outputs.files import safe_name
from ctxgen.outputs.metadata import read_metadata, scene_files
from ctxgen.outputs.metadata_schema import parse_render_metadata
from ctxgen.scene.model import Scene, load_scene, parse_scene


def scene_of(doc: Any, png: Path) -> Scene:
    """The scene the image was rendered from: its file when unchanged, else the text embedded in the PNG, parsed
    as if it stood at its old path (references are still read from there)."""
    src = Path(doc.scene_file)
    try:
        unchanged = src.is_file() and hashlib.sha256(src.read_bytes()).hexdigest() == doc.scene_sha256
    except OSError:
        unchanged = False
    if unchanged:
        return load_scene(src)
    if not src.parent.is_dir():
        raise UserError(f"{png}: its scene folder {src.parent} is gone; the references are needed to render again")
    return parse_scene(doc.scene_yaml.encode("utf-8"), src)


def check_files(doc: Any, scene: Scene, png: Path) -> None:
    """Every reference, mask and layout must still have the bytes the image was rendered from."""
    now = scene_files(scene)
    for path, digest in doc.files.items():
        if now.get(path) != digest:
            raise UserError(f"{png}: {path} changed or is missing since this image was rendered; restore it to reproduce")


def reproduce(png: Path, out: Path) -> dict[str, Any]:
    """Render the image's seed again with its recorded settings; returns paths and the pixel difference."""
    from ctxgen.batch.job import SceneWorker
    from ctxgen.batch.types import BatchOptions
    from ctxgen.outputs.compare import read_rgb
    from ctxgen.outputs.metadata import RenderSettings

    png = Path(png)
    original = read_rgb(png)  # the same safe opener as every image: a bad file fails before any model loads
    doc = parse_render_metadata(read_metadata(png), png)
    settings = RenderSettings(**doc.settings.model_dump())
    scene = scene_of(doc, png)
    check_files(doc, scene, png)
    opts = BatchOptions(out=out, base=settings.base, adapter=settings.adapter or "none", seeds=(doc.seed,),
                        render=settings.options(), device=settings.device, overlays=False, force=True)
    worker = SceneWorker(opts)
    out_dir = Path(out) / safe_name(Path(doc.scene_file).stem)
    (record,) = worker.render_scene(scene, out_dir)
    new = Path(record.outputs[0])
    a, b = original.astype(np.int16), read_rgb(new).astype(np.int16)
    same_shape = a.shape == b.shape
    return {"original": str(png), "reproduced": str(new), "identical": bool(same_shape and np.array_equal(a, b)),
            "max_abs_diff": int(np.abs(a - b).max()) if same_shape else 255}
