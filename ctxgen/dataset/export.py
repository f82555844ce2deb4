"""`ctxgen dataset export-scenes`: records back to scene YAML + the image files, byte for byte. Torch-free.

`OUT/<id>.yaml` names its images in `OUT/<id>/` under their original file names (a clash inside one record goes
into a sub-folder named after the field), with `canvas:` = the target's size so boxes stay in target pixels and
`size:` = the training canvas. `pack` reads these files back into identical records.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ctxgen.core.fsio import write_bytes, write_text
from ctxgen.dataset.record import ImageData, Record, training_canvas

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.+()-]{0,150}")
_SIGNATURES = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"RIFF", ".webp"), (b"GIF8", ".gif"), (b"BM", ".bmp"))


def record_stem(rec: Record) -> str:
    """A safe relative path for a record's files, from its id (`a/b-1`; unsafe parts replaced)."""
    parts = [re.sub(r"[^A-Za-z0-9_.-]", "_", p).lstrip(".") or "_" for p in rec.id.split("/")]
    return "/".join(parts)[:200] or "record"


def _file_name(img: ImageData, field: str) -> str:
    name = img.name.rsplit("/", 1)[-1]
    if _SAFE.fullmatch(name) and not name.endswith(".yaml"):
        return name
    ext = next((e for sig, e in _SIGNATURES if img.data.startswith(sig)), ".img")
    return re.sub(r"[^A-Za-z0-9]+", "-", field).strip("-") + ext


def _place(rec: Record) -> dict[str, str]:
    """field -> path relative to the record's folder; names clash only inside one record."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for field, img in rec.images():
        name = _file_name(img, field)
        if name.lower() in used:
            name = f"{re.sub(r'[^A-Za-z0-9]+', '-', field).strip('-')}/{name}"
        used.add(name.lower())
        names[field] = name
    return names


def scene_document(rec: Record, files: dict[str, str], size: tuple[int, int] | None = None,
                   seed: int | None = None) -> dict:
    """The scene mapping of a record (paths from `files`); `size`/`seed` override for previews only."""
    w, h = rec.target.size()
    doc: dict = {"id": rec.id, "subset": rec.subset, "prompt": rec.prompt, "target": files["target"]}
    if rec.rejected is not None:
        doc["rejected"] = files["rejected"]
    doc["size"] = list(size or training_canvas(w, h))
    doc["canvas"] = [w, h]
    chosen = rec.seed if rec.seed is not None else seed
    if chosen is not None:
        doc["seed"] = chosen
    for key in ("fit", "ica"):
        if getattr(rec, key) is not None:
            doc[key] = getattr(rec, key)
    if rec.layout is not None:
        doc["layout"] = files["layout"]
    if rec.metadata:
        doc["metadata"] = dict(rec.metadata)
    doc["instances"] = [_instance_doc(rec, i, files) for i in range(len(rec.instances))]
    return doc


def _instance_doc(rec: Record, i: int, files: dict[str, str]) -> dict:
    inst, where = rec.instances[i], f"instances[{i}]"
    out: dict = {"image": files[f"{where}.image"]}
    if inst.mask is not None:
        out["mask"] = files[f"{where}.mask"]
    out["box"] = list(inst.box)
    for key in ("label", "phrase", "fit", "z"):
        if getattr(inst, key) is not None:
            out[key] = getattr(inst, key)
    if inst.kind != "object":
        out["kind"] = inst.kind
    for key in ("valid_box", "loc_point"):
        if getattr(inst, key) is not None:
            out[key] = list(getattr(inst, key))
    for key in ("enhanced_image", "enhanced_mask", "face_image"):
        if getattr(inst, key) is not None:
            out[key] = files[f"{where}.{key}"]
    return out


def dump_yaml(doc: dict) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)


def export_record(rec: Record, out: Path, size: tuple[int, int] | None = None, seed: int | None = None) -> Path:
    """Write `out/<stem>.yaml` and the record's images under `out/<stem>/`; returns the YAML path."""
    stem = record_stem(rec)
    folder = PurePosixPath(stem).name
    placed = _place(rec)
    images = dict(rec.images())
    for field, rel in placed.items():
        write_bytes(out / stem / rel, images[field].data)
    files = {field: f"{folder}/{rel}" for field, rel in placed.items()}
    return write_text(out / f"{stem}.yaml", dump_yaml(scene_document(rec, files, size, seed)))
