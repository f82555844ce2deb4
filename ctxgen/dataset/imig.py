"""`ctxgen dataset import-imig`: the published IMIG-100K folders (D1, D2) into records. Torch-free.

`imig-basic/` and `imig-complex/`: `filtered_prompts.json` = [{index, prompt, reference_images: [{index, bbox,
phrase, valid_bbox?}]}]; target `data/{i:06d}.jpg`, crop `instance_data/{i:06d}_{k}.jpg` with its 1-bit mask
`masked_instance_data/{i:06d}_{k}_mask.png`, and the repainted reference `kontext_data/{i:06d}_{k}.jpg` with
`masked_kontext_data/{i:06d}_{k}_mask.png` (`valid_bbox` is its box). Both references are kept, so the choice is
a training-time augmentation (T2). `imig-composite/` and `imig-multicomposite/`: [{index, prompt, instance:
[phrase], indices, bbox: [{bbox, score} | null], face_bbox: [null | {target, ref, aligned_face_bbox, score}]}];
target `composite_images/{i:06d}.jpg`, reference `reference_masks/{i:06d}_{k}.jpg` + `{i:06d}_{k}_mask.png`
(k = indices[j]), face crop `aligned_faces/{i:06d}_{k}_aligned_face.png`. Every field is untrusted: what cannot be
used is skipped and logged with its reason, never raised. Files are copied as bytes; only headers and the small
masks are decoded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ctxgen.core.errors import UserError
from ctxgen.dataset.checks import check_record
from ctxgen.dataset.record import ImageData, InstanceRecord, Record

SUBSET_DIRS = {"imig-basic": "basic", "imig-complex": "complex", "imig-composite": "composite",
               "imig-multicomposite": "multicomposite"}
PROMPTS = "filtered_prompts.json"
_IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_ENHANCED_FIELDS = ("enhanced_image", "enhanced_mask", "valid_box")


def plan_imig(root: Path, subsets: list[str] | None = None) -> tuple[list[tuple], list[dict]]:
    """(subset folder, root, position, entry JSON) per record, in folder then file order; unreadable subsets logged."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder; give the IMIG-100K folder that holds imig-basic/, imig-complex/, ...")
    wanted = [d for d in SUBSET_DIRS if subsets is None or SUBSET_DIRS[d] in subsets or d in subsets]
    found = [d for d in wanted if (root / d).is_dir()]
    if not found:
        raise UserError(f"{root}: holds none of {', '.join(d + '/' for d in wanted)}; give the IMIG-100K folder")
    items, log = [], []
    for d in found:
        entries, problem = _read_prompts(root / d / PROMPTS)
        if problem is not None:
            log.append({"level": "skip-subset", "reason": problem[0], "subset": SUBSET_DIRS[d],
                        "file": f"{d}/{PROMPTS}", "message": f"{d}/{PROMPTS}: {problem[1]}"})
            continue
        items += [(d, str(root), pos, json.dumps(e, sort_keys=True)) for pos, e in enumerate(entries)]
    return items, log


def _read_prompts(path: Path) -> tuple[list, tuple[str, str] | None]:
    if not path.is_file():
        return [], ("missing-file", "not found; this subset is skipped")
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, OSError) as exc:
        return [], ("not-imig", f"not valid JSON ({type(exc).__name__}: {str(exc)[:80]}); this subset is skipped")
    if not isinstance(doc, list):
        return [], ("not-imig", f"holds a JSON {type(doc).__name__}, not the IMIG list of records; skipped")
    return doc, None


class _Entry:
    """One JSON record of a subset being turned into a Record, with its log."""

    def __init__(self, d: str, root: str, pos: int, entry: Any, log: list[dict]):
        self.dir, self.root, self.pos, self.raw, self.log = d, Path(root) / d, pos, entry, log
        self.subset = SUBSET_DIRS[d]
        self.index = entry.get("index") if isinstance(entry, dict) else None
        self.id = f"{self.subset}-{self.index:06d}" if _is_index(self.index) else f"{self.subset}-entry{pos}"

    def note(self, level: str, reason: str, message: str, instance: Any = None, file: str | None = None) -> None:
        self.log.append({"level": level, "reason": reason, "subset": self.subset, "id": self.id,
                         "index": self.index, "instance": instance, "file": file, "message": f"{self.id}: {message}"})

    def find(self, folder: str, stem: str, exts: tuple[str, ...] = _IMAGE_EXTS) -> ImageData | None:
        for ext in exts:
            path = self.root / folder / f"{stem}{ext}"
            try:
                return ImageData(path.read_bytes(), path.name)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue
            except OSError:
                return None
        return None

    def need(self, folder: str, stem: str, k: Any, exts: tuple[str, ...] = _IMAGE_EXTS) -> ImageData | None:
        img = self.find(folder, stem, exts)
        if img is None:
            rel = f"{self.dir}/{folder}/{stem}{exts[0]}"
            self.note("skip-instance" if k is not None else "skip-record", "missing-file",
                      f"missing {rel}", k, rel)
        return img


def _is_index(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _box(v: Any) -> tuple[float, float, float, float] | None:
    ok = isinstance(v, list) and len(v) == 4 and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
    return tuple(float(x) for x in v) if ok else None  # type: ignore[return-value]


def _basic_instances(e: _Entry, i: int) -> list[tuple[Any, InstanceRecord, Any]]:
    out = []
    for ref in e.raw["reference_images"]:
        k = ref.get("index") if isinstance(ref, dict) else None
        box = _box(ref.get("bbox")) if isinstance(ref, dict) else None
        if not _is_index(k) or box is None:
            e.note("skip-instance", "not-imig", "a reference_images item needs an integer index and a 4-number bbox", k)
            continue
        stem = f"{i:06d}_{k}"
        image = e.need("instance_data", stem, k)
        mask = e.need("masked_instance_data", f"{stem}_mask", k, (".png", ".jpg")) if image is not None else None
        if image is None or mask is None:
            continue
        extra: dict = {}
        enhanced = e.find("kontext_data", stem)
        if enhanced is not None:
            extra = {"enhanced_image": enhanced, "valid_box": _box(ref.get("valid_bbox")),
                     "enhanced_mask": e.find("masked_kontext_data", f"{stem}_mask", (".png", ".jpg"))}
            if extra["enhanced_mask"] is None:
                e.note("note", "missing-file", f"reference {k}: no masked_kontext_data/{stem}_mask.png; the "
                       "repainted reference is left out", k)
                extra = {}
        phrase = ref.get("phrase") if isinstance(ref.get("phrase"), str) else None
        out.append((k, InstanceRecord(image=image, mask=mask, box=box, phrase=phrase, **extra), ref))
    return out


def _composite_instances(e: _Entry, i: int) -> list[tuple[Any, InstanceRecord, Any]]:
    names, boxes, faces = e.raw["instance"], e.raw["bbox"], e.raw["face_bbox"]
    indices = e.raw.get("indices", list(range(len(names))))
    out = []
    for j in range(len(names)):
        k, b, f = indices[j], boxes[j], faces[j]
        box = _box(b.get("bbox")) if isinstance(b, dict) else None
        box = box or (_box(f.get("target")) if isinstance(f, dict) else None)
        if not _is_index(k) or box is None:
            e.note("skip-instance", "no-box", f"instance {j}: no usable bbox or face box", k)
            continue
        stem = f"{i:06d}_{k}"
        image = e.need("reference_masks", stem, k, (".jpg", ".jpeg", ".png"))
        mask = e.need("reference_masks", f"{stem}_mask", k, (".png", ".jpg")) if image is not None else None
        if image is None or mask is None:
            continue
        face = e.find("aligned_faces", f"{stem}_aligned_face", (".png",)) if isinstance(f, dict) else None
        phrase = names[j] if isinstance(names[j], str) else None
        out.append((k, InstanceRecord(image=image, mask=mask, box=box, phrase=phrase,
                                      kind="face" if isinstance(f, dict) else "object", face_image=face),
                    {"index": k, "bbox": b, "face_bbox": f}))
    return out


def _shape_problem(raw: dict, composite: bool) -> str | None:
    """Why an entry's instance lists are not the IMIG shape, or None."""
    if not composite:
        return None if isinstance(raw.get("reference_images"), list) else "reference_images is not a list"
    names = raw.get("instance")
    n = len(names) if isinstance(names, list) else -1
    lists = (raw.get("bbox"), raw.get("face_bbox"), raw.get("indices", names))
    if n < 0 or not all(isinstance(v, list) and len(v) == n for v in lists):
        return "instance, indices, bbox and face_bbox must be lists of one length"
    return None


def _record(e: _Entry) -> Record | None:
    """The entry's record: the target and every usable instance (boxes clipped to the target, D2)."""
    if not isinstance(e.raw, dict) or not _is_index(e.index):
        e.note("skip-record", "not-imig", f"entry {e.pos} is not an IMIG record (needs an integer `index`)")
        return None
    prompt = e.raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        e.note("skip-record", "not-imig", "needs a non-empty `prompt`")
        return None
    composite = e.subset in ("composite", "multicomposite")
    shape = _shape_problem(e.raw, composite)
    if shape is not None:
        e.note("skip-record", "not-imig", shape)
        return None
    target = e.need("composite_images" if composite else "data", f"{e.index:06d}", None)
    if target is None:
        return None
    from ctxgen.scene.images import ImageError

    try:
        w, h = target.size()
    except ImageError as exc:
        e.note("skip-record", "unreadable", f"{target.name}: {exc.reason}")
        return None
    found = (_composite_instances if composite else _basic_instances)(e, e.index)
    kept = [(clipped, raw) for k, inst, raw in found if (clipped := _clip(e, k, inst, w, h)) is not None]
    skip = {"index", "prompt", "reference_images", "instance", "bbox", "face_bbox", "indices"}
    meta = {"imig": {"source": e.dir, "index": e.index, **{k: v for k, v in e.raw.items() if k not in skip},
                     "instances": [raw for _, raw in kept]}}
    return Record(id=e.id, subset=e.subset, prompt=prompt, target=target, instances=tuple(i for i, _ in kept),
                  metadata=meta)


def _clip(e: _Entry, k: Any, inst: InstanceRecord, w: int, h: int) -> InstanceRecord | None:
    x1, y1, x2, y2 = inst.box
    clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h)))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        e.note("skip-instance", "box-outside", f"reference {k}: box {list(inst.box)} is outside the "
               f"{w}x{h} image (or has no area)", k)
        return None
    if clipped != inst.box:
        e.note("note", "box-clipped", f"reference {k}: box {list(inst.box)} clipped to the {w}x{h} image", k)
        from dataclasses import replace

        inst = replace(inst, box=clipped)
    return inst


def _screen(e: _Entry, rec: Record, pixels: bool) -> Record | None:
    """check_record; a problem drops the repainted reference, the face crop, the instance or the whole record."""
    from dataclasses import replace

    problems = check_record(rec, pixels=pixels)
    top = [p for p in problems if not p.field.startswith("instances[")]
    if top:
        e.note("skip-record", top[0].reason, str(top[0]))
        return None
    keep, raws = [], []
    refs = [raw.get("index") for raw in rec.metadata["imig"]["instances"]]
    for i, inst in enumerate(rec.instances):
        mine = [p for p in problems if p.field.startswith(f"instances[{i}].")]
        sub = lambda p: p.field.split(".", 1)[1]  # noqa: E731
        enhanced = [p for p in mine if sub(p) in _ENHANCED_FIELDS]
        if enhanced:
            e.note("note", enhanced[0].reason, f"reference {refs[i]}: repainted reference left out ({enhanced[0]})",
                   refs[i])
            inst = replace(inst, enhanced_image=None, enhanced_mask=None, valid_box=None)
        if any(sub(p) == "face_image" for p in mine):
            e.note("note", "unreadable", f"reference {refs[i]}: face crop left out", refs[i])
            inst = replace(inst, face_image=None)
        rest = [p for p in mine if sub(p) not in _ENHANCED_FIELDS + ("face_image",)]
        if rest:
            e.note("skip-instance", rest[0].reason, f"reference {refs[i]}: {rest[0]}", refs[i])
            continue
        keep.append(inst)
        raws.append(rec.metadata["imig"]["instances"][i])
    if not keep:
        e.note("skip-record", "no-instances", "no usable instance left")
        return None
    meta = {"imig": {**rec.metadata["imig"], "instances": raws}}
    return replace(rec, instances=tuple(keep), metadata=meta)


def import_items(items: tuple, options: dict) -> tuple[list[Record], list[dict]]:
    """One chunk of `import-imig`: records for the entries that hold one, and the log of everything skipped."""
    records, log = [], []
    for d, root, pos, text in items:
        e = _Entry(d, root, pos, json.loads(text), log)
        rec = _record(e)
        if rec is not None and rec.instances:
            rec = _screen(e, rec, bool(options.get("decode")))
        elif rec is not None:
            e.note("skip-record", "no-instances", "no usable instance")
            rec = None
        if rec is not None:
            records.append(rec)
    return records, log
