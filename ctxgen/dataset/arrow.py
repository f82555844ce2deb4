"""The Parquet schema of a record and the conversions Record <-> row (docs/dataset.md). Torch-free.

Image columns are `struct<bytes: binary, path: string>` and the file carries Hugging Face `datasets` features
(`Image()`), so `datasets.load_dataset("parquet", data_files=..., streaming=True)` decodes them. pyarrow is
imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ctxgen.core.errors import UserError
from ctxgen.dataset.record import SCHEMA_VERSION, ImageData, InstanceRecord, Record

FORMAT = "ctxgen-dataset"
IMAGE_FIELDS = ("image", "mask", "enhanced_image", "enhanced_mask", "face_image")
_DOCS = {
    "id": "unique record id", "subset": "subset name (basic, complex, composite, multicomposite, or yours)",
    "prompt": "the scene prompt (before the R3 template)", "target": "the target image, bytes as they came",
    "rejected": "optional rejected image for preference training (T4)", "layout": "optional user RGBA layout (R12)",
    "instances": "1..16 instances, scene order", "seed": "optional scene seed", "fit": "optional scene-level fit",
    "ica": "optional scene-level ica mode", "metadata": "free metadata, a JSON object as text",
    "schema_version": f"record schema version ({SCHEMA_VERSION})",
    "image": "reference: RGBA cut-out, or RGB with `mask`", "mask": "mask image (null: the image's alpha)",
    "box": "x1, y1, x2, y2 in target pixels", "label": "optional label (overlays, evaluation)",
    "phrase": "optional noun phrase", "kind": "object or face",
    "valid_box": "subject box inside the enhanced reference (IMIG valid_bbox)",
    "loc_point": "optional point of the subject, target pixels", "enhanced_image": "Kontext-repainted reference",
    "enhanced_mask": "its mask (null: enhanced_image's alpha)", "face_image": "aligned face crop (RGBA)",
    "z": "optional explicit layer (R11)",
}


class RowError(UserError):
    """A stored row that does not hold a valid record; the message names the field."""


def _types():
    import pyarrow as pa

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    instance = pa.struct([
        ("image", image), ("mask", image), ("box", pa.list_(pa.float64(), 4)), ("label", pa.string()),
        ("phrase", pa.string()), ("kind", pa.string()), ("valid_box", pa.list_(pa.float64(), 4)),
        ("loc_point", pa.list_(pa.float64(), 2)), ("enhanced_image", image), ("enhanced_mask", image),
        ("face_image", image), ("fit", pa.string()), ("z", pa.int64()),
    ])
    return pa, image, instance


def columns():
    """The top-level (name, arrow type) pairs, in file order."""
    pa, image, instance = _types()
    return [("id", pa.string()), ("subset", pa.string()), ("prompt", pa.string()), ("target", image),
            ("rejected", image), ("layout", image), ("instances", pa.list_(instance)), ("seed", pa.int64()),
            ("fit", pa.string()), ("ica", pa.string()), ("metadata", pa.string()), ("schema_version", pa.int32())]


def hf_features() -> dict:
    """The Hugging Face `datasets` features of the columns (the legacy spelling every datasets version reads)."""
    value = lambda dtype: {"dtype": dtype, "_type": "Value"}  # noqa: E731
    seq = lambda n: {"feature": value("float64"), "length": n, "_type": "Sequence"}  # noqa: E731
    image = {"_type": "Image"}
    instance = {"image": image, "mask": image, "box": seq(4), "label": value("string"), "phrase": value("string"),
                "kind": value("string"), "valid_box": seq(4), "loc_point": seq(2), "enhanced_image": image,
                "enhanced_mask": image, "face_image": image, "fit": value("string"), "z": value("int64")}
    return {"id": value("string"), "subset": value("string"), "prompt": value("string"), "target": image,
            "rejected": image, "layout": image, "instances": [instance], "seed": value("int64"),
            "fit": value("string"), "ica": value("string"), "metadata": value("string"),
            "schema_version": value("int32")}


def arrow_schema():
    """The pyarrow schema with the `huggingface` features and the `ctxgen` format tag in its metadata."""
    import pyarrow as pa

    meta = {"huggingface": json.dumps({"info": {"features": hf_features()}}),
            "ctxgen": json.dumps({"format": FORMAT, "schema_version": SCHEMA_VERSION})}
    return pa.schema([pa.field(name, typ) for name, typ in columns()], metadata=meta)


def schema_document() -> dict:
    """`ctxgen dataset schema`: the columns, the instance fields, and the datasets features, as JSON."""
    _, _, instance = _types()
    cols = [{"name": n, "type": str(t), "description": _DOCS[n]} for n, t in columns()]
    fields = [{"name": f.name, "type": str(f.type), "description": _DOCS[f.name]} for f in instance]
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "file_names": "{split}-{k:05d}-of-{n:05d}.parquet",
            "columns": cols, "instance_fields": fields, "features": hf_features()}


def _image_cell(img: ImageData | None) -> dict | None:
    return None if img is None else {"bytes": img.data, "path": img.name}


def record_to_row(rec: Record) -> dict[str, Any]:
    """A Record as one row of the schema (a plain dict)."""
    instances = []
    for inst in rec.instances:
        cell = {name: _image_cell(getattr(inst, name)) for name in IMAGE_FIELDS}
        cell.update(box=list(inst.box), label=inst.label, phrase=inst.phrase, kind=inst.kind,
                    valid_box=None if inst.valid_box is None else list(inst.valid_box),
                    loc_point=None if inst.loc_point is None else list(inst.loc_point), fit=inst.fit, z=inst.z)
        instances.append(cell)
    return {"id": rec.id, "subset": rec.subset, "prompt": rec.prompt, "target": _image_cell(rec.target),
            "rejected": _image_cell(rec.rejected), "layout": _image_cell(rec.layout), "instances": instances,
            "seed": rec.seed, "fit": rec.fit, "ica": rec.ica,
            "metadata": json.dumps(dict(rec.metadata), sort_keys=True, ensure_ascii=False, allow_nan=False),
            "schema_version": SCHEMA_VERSION}


def _image(cell: Any, where: str, required: bool = False) -> ImageData | None:
    if cell is None:
        if required:
            raise RowError(f"{where}: no image (null)")
        return None
    data = cell.get("bytes") if isinstance(cell, dict) else None
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise RowError(f"{where}: no image bytes (the image is missing or empty)")
    name = cell.get("path") or where
    return ImageData(bytes(data), str(name))


def _numbers(value: Any, n: int, where: str, required: bool = False) -> tuple[float, ...] | None:
    if value is None:
        if required:
            raise RowError(f"{where}: missing")
        return None
    if len(value) != n or any(v is None or not math.isfinite(v) for v in value):
        raise RowError(f"{where}: needs {n} finite numbers; got {list(value)}")
    return tuple(float(v) for v in value)


def _text(row: dict, key: str, required: bool = True) -> str | None:
    value = row.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise RowError(f"{key}: needs text; got {type(value).__name__}")
    return value


def _instance(cell: Any, i: int) -> InstanceRecord:
    where = f"instances[{i}]"
    if not isinstance(cell, dict):
        raise RowError(f"{where}: not an instance struct")
    images = {name: _image(cell.get(name), f"{where}.{name}", required=name == "image") for name in IMAGE_FIELDS}
    return InstanceRecord(
        **images, box=_numbers(cell.get("box"), 4, f"{where}.box", required=True),
        label=cell.get("label"), phrase=cell.get("phrase"), kind=cell.get("kind") or "object",
        valid_box=_numbers(cell.get("valid_box"), 4, f"{where}.valid_box"),
        loc_point=_numbers(cell.get("loc_point"), 2, f"{where}.loc_point"), fit=cell.get("fit"), z=cell.get("z"))


def row_to_record(row: dict[str, Any]) -> Record:
    """A stored row back to a Record; a row that is not a valid record raises RowError naming the field."""
    version = row.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RowError(f"schema_version: {version!r} is not {SCHEMA_VERSION}, the version this ctxgen reads; "
                       "use the ctxgen that wrote it, or pack the data again")
    try:
        metadata = json.loads(row.get("metadata") or "{}")
    except ValueError:
        raise RowError("metadata: not valid JSON") from None
    if not isinstance(metadata, dict):
        raise RowError("metadata: needs a JSON object")
    instances = row.get("instances")
    if not isinstance(instances, list):
        raise RowError("instances: missing")
    return Record(
        id=_text(row, "id"), subset=_text(row, "subset"), prompt=_text(row, "prompt"),
        target=_image(row.get("target"), "target", required=True),
        instances=tuple(_instance(cell, i) for i, cell in enumerate(instances)),
        rejected=_image(row.get("rejected"), "rejected"), layout=_image(row.get("layout"), "layout"),
        seed=row.get("seed"), metadata=metadata, fit=_text(row, "fit", False), ica=_text(row, "ica", False))
