"""`ctxgen dataset pack`: a scene YAML naming a `target:` becomes a Record, with render's own validation (R1, R2, R8).

The scene schema is strict and knows nothing of datasets, so the dataset keys (top level: `target`, `rejected`,
`id`, `subset`, `metadata`; per instance: `kind`, `valid_box`, `loc_point`, `enhanced_image`, `enhanced_mask`,
`face_image`) are read here, with their YAML line:col, and blanked out of the text (spaces in place, so every
other line:col stays put) before `parse_scene` checks the rest exactly as `ctxgen validate` does. When the file
gives neither `size:` nor `canvas:`, boxes are in target pixels. Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path

from ctxgen.core.errors import SceneError
from ctxgen.dataset.checks import check_record
from ctxgen.dataset.extras import SUBSET_NAME, DatasetKeys
from ctxgen.dataset.record import KINDS, ImageData, InstanceRecord, Record, scale_box
from ctxgen.scene.marks import Report, compose, decode_text, field_path, format_issue, issue_position
from ctxgen.scene.model import DEFAULT_SIZE, locate, parse_scene, read_scene_bytes

TOP_KEYS = ("target", "rejected", "id", "subset", "metadata")
INSTANCE_KEYS = ("kind", "valid_box", "loc_point", "enhanced_image", "enhanced_mask", "face_image")


def _pairs(node, keys: tuple[str, ...]):
    """(key node, value node) pairs of a mapping node whose key is one of `keys`."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return []
    return [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value in keys]


def _blank(text: str, root) -> str:
    """The text with every dataset key and its value replaced by spaces (newlines kept, so marks stay put)."""
    import yaml

    spans = [(k, v, root.flow_style) for k, v in _pairs(root, TOP_KEYS)]
    for k, v in _pairs(root, ("instances",)):
        for item in v.value if isinstance(v, yaml.SequenceNode) else ():
            spans += [(ik, iv, getattr(item, "flow_style", False)) for ik, iv in _pairs(item, INSTANCE_KEYS)]
    chars = list(text)
    for k, v, flow in spans:
        start, end = k.start_mark.index, v.end_mark.index
        for j in range(start, end):
            if chars[j] not in "\r\n":
                chars[j] = " "
        if flow:  # also drop the comma that separated this pair from its neighbour
            j = end
            while j < len(chars) and chars[j] in " \t\r\n":
                j += 1
            if j < len(chars) and chars[j] == ",":
                chars[j] = " "
            else:
                j = start - 1
                while j >= 0 and chars[j] in " \t\r\n":
                    j -= 1
                if j >= 0 and chars[j] == ",":
                    chars[j] = " "
    return "".join(chars)


def _scene_part(text: str, root, data: dict, target: ImageData | None, path) -> tuple[object, list[str]]:
    """parse_scene on the text without the dataset keys: (Scene or None, its issue lines)."""
    scene_text = _blank(text, root)
    if "size" not in data and "canvas" not in data and not root.flow_style and target is not None:
        scene_text += "\ncanvas: [%d, %d]\n" % target.size()  # no coordinate space given: target pixels
    try:
        return parse_scene(scene_text.encode("utf-8"), path), []
    except SceneError as exc:
        return None, list(exc.issues)


def _document(raw: bytes, path) -> tuple[str, object, dict, Report]:
    """The text, its YAML node tree, the plain data and a Report holding the marks (no issues yet)."""
    import yaml

    shown = os.fspath(path)
    text = decode_text(raw, shown)
    try:  # libyaml when present: 10x faster, the same nodes and character marks
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except Exception:  # any YAML problem: the scene reader's own one-line message
        root = compose(text, shown)
    if not isinstance(root, yaml.MappingNode):
        parse_scene(raw, path)  # raises the scene's own message for a document that is not a mapping
    report = Report(shown)
    data = report.walk(root)
    report.issues.clear()  # the scene check reports those (duplicate keys, unreadable values) itself
    return text, root, data, report


def parse_pack_scene(raw: bytes, path: str | os.PathLike[str]):
    """The `Scene` of a pack scene file (its dataset keys set aside): what `layout` and `render` would see."""
    text, root, data, report = _document(raw, path)
    target = DatasetKeys(report, Path(os.fspath(path)).resolve().parent).image(data, ("target",))
    scene, issues = _scene_part(text, root, data, target, path)
    if issues:
        raise SceneError(issues)
    return scene


def read_pack_scene(raw: bytes, path: str | os.PathLike[str], default_id: str, pixels: bool = False) -> Record:
    """One pack scene file's bytes -> a Record; every problem at once as `file:line:col field: message` lines."""
    shown = os.fspath(path)
    text, root, data, report = _document(raw, path)
    ex = DatasetKeys(report, Path(shown).resolve().parent)
    target = ex.image(data, ("target",), required=True)
    scene, issues = _scene_part(text, root, data, target, path)
    rec = _record(ex, data, target, default_id, scene is not None)
    issues += report.lines()
    if rec is not None and scene is not None and not issues:
        marks = {field_path(loc): mark for loc, mark in report.marks.items()}
        issues += [format_issue(shown, *locate(marks, p.field), p.field, p.message)
                   for p in check_record(rec, pixels=pixels)]
    if issues:
        raise SceneError(sorted(set(issues), key=lambda line: (*issue_position(line, shown), line)))
    return rec


def _record(ex: DatasetKeys, data: dict, target: ImageData | None, default_id: str, scene_ok: bool) -> Record | None:
    """The Record from the raw document (boxes clipped to the canvas (R8), scaled to target pixels).

    The dataset keys are always checked; the scene's own keys only once the scene check passed (so a missing
    reference is reported once, by the scene check)."""
    seed = data.get("seed")
    if isinstance(seed, list) and len(seed) > 1:
        ex.at(("seed",), "a training record keeps one seed; give one")
    tsize = target.size() if target is not None else None
    items = data.get("instances") if isinstance(data.get("instances"), list) else []
    instances = [_instance(ex, raw, i, data, tsize, scene_ok) for i, raw in enumerate(items) if isinstance(raw, dict)]
    rejected = ex.image(data, ("rejected",))
    rid, subset, metadata = ex.text(data, "id"), ex.text(data, "subset", SUBSET_NAME), ex.metadata(data)
    layout = data.get("layout")
    user_layout = scene_ok and isinstance(layout, str) and layout != "auto"
    layout_img = ex.image(data, ("layout",)) if user_layout else None
    if not scene_ok or target is None or None in instances or ex.report.issues:
        return None
    return Record(id=rid or default_id, subset=subset or "default", prompt=data["prompt"], target=target,
                  instances=tuple(instances), rejected=rejected, layout=layout_img,
                  seed=(seed[0] if isinstance(seed, list) else seed), metadata=metadata,
                  fit=data.get("fit"), ica=data.get("ica"))


def _instance(ex: DatasetKeys, raw: dict, i: int, data: dict, tsize, scene_ok: bool) -> InstanceRecord | None:
    loc = ("instances", i)
    if raw.get("mask") == "auto":
        ex.at(loc + ("mask",), "a dataset stores its masks: `mask: auto` runs SAM at render time; save one with "
              "`ctxgen mask` and give `mask: <file>`, or use an RGBA cut-out")
    kind = raw.get("kind", "object")
    if kind not in KINDS:
        ex.at(loc + ("kind",), f"must be one of {', '.join(KINDS)}; got {kind!r}")
    if raw.get("enhanced_mask") is not None and raw.get("enhanced_image") is None:
        ex.at(loc + ("enhanced_mask",), "given without `enhanced_image`")
    images = {k: ex.image(raw, loc + (k,)) for k in ("enhanced_image", "enhanced_mask", "face_image")}
    valid_box, point = ex.numbers(raw, loc + ("valid_box",), 4), ex.numbers(raw, loc + ("loc_point",), 2)
    if not scene_ok:
        return None
    image = ex.image(raw, loc + ("image",))
    mask = ex.image(raw, loc + ("mask",)) if raw.get("mask") not in (None, "alpha", "auto") else None
    key = "box" if raw.get("box") is not None else "box_norm"
    box = raw.get(key)
    if image is None or tsize is None or not isinstance(box, list) or len(box) != 4:
        return None
    frame = (1, 1) if key == "box_norm" else _units(data, tsize)
    x1, y1, x2, y2 = box
    clipped = (max(x1, 0), max(y1, 0), min(x2, frame[0]), min(y2, frame[1]))  # R8, as the scene check warned
    if point is not None:
        point = scale_box((*point, *point), frame, tsize)[:2]
    return InstanceRecord(image=image, mask=mask, box=scale_box(clipped, frame, tsize), label=raw.get("label"),
                          phrase=raw.get("phrase"), kind=kind, valid_box=valid_box, loc_point=point,
                          fit=raw.get("fit"), z=raw.get("z"), **images)


def _units(data: dict, tsize: tuple[int, int]) -> tuple[float, float]:
    """The coordinate space of `box`: `canvas`, else `size`, else the target's pixels (neither given)."""
    for key in ("canvas", "size"):
        if isinstance(data.get(key), list) and len(data[key]) == 2:
            return tuple(data[key])  # type: ignore[return-value]
    return tsize if "size" not in data else DEFAULT_SIZE


def pack_items(items: tuple, options: dict) -> tuple[list[Record], list[dict]]:
    """One chunk of `pack`: (path, default id, size, mtime) items -> records, plus a log entry per failed scene."""
    records, log = [], []
    for path, default_id, *_ in items:
        try:
            raw = read_scene_bytes(Path(path), path)
            records.append(read_pack_scene(raw, path, default_id, pixels=bool(options.get("decode"))))
        except SceneError as exc:
            log.append({"level": "skip-record", "reason": "invalid-scene", "source": path,
                        "message": exc.issues[0], "issues": exc.issues})
    return records, log


def plan_pack(paths: list[Path]) -> list[tuple]:
    """Pack inputs: (path, default id, size, mtime_ns); the default id is the path below the inputs' common folder."""
    resolved = [p.resolve() for p in paths]
    common = Path(os.path.commonpath([str(p.parent) for p in resolved])) if resolved else Path(".")
    items = []
    for shown, real in zip(paths, resolved):
        try:
            st = real.stat()
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = (-1, -1)
        items.append((str(shown), real.relative_to(common).with_suffix("").as_posix(), *stamp))
    return items


__all__ = ["read_pack_scene", "parse_pack_scene", "pack_items", "plan_pack", "TOP_KEYS", "INSTANCE_KEYS"]
