"""Stage 1: YAML scene file -> validated, frozen `Scene` (R1, R8). Torch-free.

Reading YAML with line:col marks lives in `yaml_marks`, the document models and their wording in
`scene_schema`; both import PyYAML / pydantic lazily, so `import ctxgen.scene.model` stays light.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from ctxgen.core.errors import SceneError
from ctxgen.scene.schema import DEFAULT_SIZE, Fit, IcaMode, json_schema, num, nums, validate_document
from ctxgen.scene.marks import Report, compose, decode_text, field_path, format_issue, show_value

__all__ = ["Box", "Fit", "IcaMode", "MaskMode", "MAX_SCENE_BYTES", "DEFAULT_SIZE", "Instance", "Scene",
           "format_issue", "file_problem", "resolve_path", "load_scene", "parse_scene", "read_scene_bytes",
           "scene_json_schema"]

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in output pixels
MaskMode = Literal["alpha", "file", "auto"]

MAX_SCENE_BYTES = 1_000_000  # a scene file is a few hundred bytes; anything this large is a mistake


@dataclass(frozen=True)
class Instance:
    """One subject: its reference image, mask source and box (already in output pixels, clipped, R8)."""

    index: int  # position in scene order (0-based)
    image: Path  # resolved absolute path
    mask_mode: MaskMode
    mask: Path | None  # resolved path when mask_mode == "file"
    box: Box  # output pixels, clipped to the canvas: the token box (R8)
    fit: Fit  # resolved: per-instance override, else the scene default
    label: str | None = None
    phrase: str | None = None
    z: int | None = None  # explicit layer, higher on top (R11)
    point: tuple[float, float] | None = None  # SAM prompt point in reference pixels (mask: auto)
    prompt_box: Box | None = None  # SAM prompt box in reference pixels (mask: auto)
    line: int = 0  # 1-based YAML line of this instance, for later error messages
    drawn_box: Box | None = None  # output pixels as drawn (may cross the canvas edge): placement (R9); None = box

    @property
    def placement_box(self) -> Box:
        """The box R9 places the reference in: as drawn, before the canvas clips it (R8)."""
        return self.box if self.drawn_box is None else self.drawn_box


@dataclass(frozen=True)
class Scene:
    """A validated scene; everything downstream reads only this."""

    source: Path  # resolved path of the YAML file
    digest: str  # sha256 hex of the YAML file bytes
    prompt: str
    size: tuple[int, int]  # W, H (multiples of 16, 256..2048)
    seeds: tuple[int, ...]  # one image per seed
    seed_random: bool  # True when the seed was drawn because the file gave none
    steps: int
    guidance: float
    layout: Path | None  # None = auto layout, else a user RGBA layout image (R12)
    ica: IcaMode
    instances: tuple[Instance, ...]
    warnings: tuple[str, ...] = field(default=())  # e.g. boxes clipped to the canvas (R8)
    display_path: str = ""  # the scene path as the user gave it, for messages ("" = source)
    # 1-based (line, col) of every value in the file, keyed by field path ("instances[0].mask")
    marks: Mapping[str, tuple[int, int]] = field(default_factory=dict, compare=False, hash=False, repr=False)
    text: str = field(default="", compare=False, hash=False, repr=False)  # the YAML as parsed (metadata, editor)

    @property
    def stem(self) -> str:
        return self.source.stem

    def where(self, path: str) -> tuple[int, int]:
        """1-based (line, col) of a field path, or of its nearest parent present in the file."""
        return locate(self.marks, path)

    def issue(self, path: str, message: str) -> str:
        """One `file:LINE:COL field.path: message` line about a field of this scene (R1)."""
        return format_issue(self.display_path or str(self.source), *self.where(path), path, message)


@dataclass(frozen=True)
class PartialScene:
    """What can still be checked in a scene file that failed validation: the instances whose image and mask fields
    are valid (boxes are placeholders) and a valid layout path, with the file's marks for `file:line:col`."""

    display_path: str
    marks: Mapping[str, tuple[int, int]]
    instances: tuple[Instance, ...]
    layout: Path | None

    def issue(self, path: str, message: str) -> str:
        return format_issue(self.display_path, *locate(self.marks, path), path, message)


def locate(marks: Mapping[str, tuple[int, int]], path: str) -> tuple[int, int]:
    """1-based (line, col) of a field path, or of its nearest parent present in the file."""
    while path and path not in marks:
        path = re.sub(r"(^|\.)[^.\[]*$|\[\d+\]$", "", path, count=1)  # "a[0].b" -> "a[0]" -> "a" -> ""
    return marks.get(path, (1, 1))


def file_problem(path: Path, what: str = "file", hint: str = "; paths are relative to the scene file") -> str | None:
    """Why `path` cannot be read as a regular file, or None if it can."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"{what} not found: {path}{hint}"
    except (OSError, ValueError) as exc:
        return f"cannot open {what} {path}: {getattr(exc, 'strerror', None) or exc}"
    if stat.S_ISDIR(st.st_mode):
        return f"{what} {path} is a directory; give the path of a file"
    if not stat.S_ISREG(st.st_mode):  # opening a FIFO would block; a device never ends
        return f"{what} {path} is not a regular file (a device, pipe or socket); give the path of a file"
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        return f"cannot read {what} {path}: {exc.strerror or exc}"
    return None


def resolve_path(base: Path, text: str) -> Path:
    """A path from the scene file, relative to the scene's folder, made absolute."""
    return (base / Path(text).expanduser()).resolve()


def load_scene(path: str | os.PathLike[str]) -> Scene:
    """Read, validate and resolve a scene file; every problem is reported at once as a SceneError (R1, R8)."""
    shown = os.fspath(path)
    return parse_scene(read_scene_bytes(Path(shown), shown), path)


def parse_scene(raw: bytes, path: str | os.PathLike[str]) -> Scene:
    """A scene from the bytes of its YAML, as if read from `path` (relative image paths resolve from its folder).

    Used by `load_scene` and by callers holding unsaved text (the editor); errors name `path` as given.
    """
    shown = os.fspath(path)
    text = decode_text(raw, shown)
    root = compose(text, shown)
    report = Report(shown)
    data = report.walk(root) if root is not None else None
    if not isinstance(data, dict):
        got = "the file is empty" if root is None else f"got {show_value(data)}"
        report.at((), f"a scene is a mapping with `prompt:`, `instances:` and optional settings; {got}")
        raise SceneError(report.lines())
    doc = validate_document(report, data)
    source = Path(shown).resolve()
    boxes = _semantics(report, data, source.parent)
    if report.issues or doc is None:
        raise SceneError(report.lines(), partial=_partial(report, data, source.parent))
    return replace(_build(doc, report, source, hashlib.sha256(raw).hexdigest(), boxes), text=text)


def scene_json_schema() -> dict:
    """The JSON Schema of a scene document (for `ctxgen schema` and editor completion)."""
    return json_schema()


def read_scene_bytes(source: Path, shown: str) -> bytes:
    """A scene file's bytes, or a SceneError with the one-line `file` issue (missing, a folder, too large, …)."""
    problem = file_problem(source, "scene file", hint="")
    if problem is None and source.stat().st_size > MAX_SCENE_BYTES:
        problem = f"larger than {MAX_SCENE_BYTES:,} bytes; this is not a scene file"
    if problem is None:
        try:
            return source.read_bytes()
        except OSError as exc:
            problem = f"cannot read scene file: {exc.strerror or exc}"
    raise SceneError([format_issue(shown, 1, 1, "file", problem)])


def _semantics(report: Report, data: dict, base: Path) -> dict[int, tuple[Box, Box]]:
    """Checks across fields and against the disk, on every raw value that validated; returns output-pixel
    boxes per instance: (clipped, as drawn)."""
    size = data.get("size", list(DEFAULT_SIZE)) if report.ok(("size",)) else None
    canvas = size if data.get("canvas") is None else (data["canvas"] if report.ok(("canvas",)) else None)
    items = data.get("instances")
    boxes = {}
    for i, raw in enumerate(items if isinstance(items, list) else ()):
        loc = ("instances", i)
        if not isinstance(raw, dict):
            continue
        value = {k: raw.get(k) if report.ok(loc + (k,)) else None for k in ("image", "mask", "box", "box_norm")}
        mask = raw.get("mask", "alpha")
        if value["image"] is not None:
            _check_file(report, loc + ("image",), base, value["image"], "image file")
        if value["mask"] not in (None, "alpha", "auto"):
            _check_file(report, loc + ("mask",), base, value["mask"], "mask file")
        for key in ("point", "prompt_box"):
            if raw.get(key) is not None and mask != "auto":
                report.at(loc + (key,), "only used with `mask: auto` (a SAM 2 prompt); remove it or set `mask: auto`")
        box = _instance_box(report, loc, raw, value, size, canvas)
        if box is not None:
            boxes[i] = box
    layout = data.get("layout")
    if isinstance(layout, str) and layout != "auto" and report.ok(("layout",)):
        _check_file(report, ("layout",), base, layout, "layout image")
    return boxes


def _check_file(report: Report, loc: tuple, base: Path, text: str, what: str) -> None:
    try:
        problem = file_problem(resolve_path(base, text), what)
    except (OSError, ValueError, RuntimeError) as exc:
        problem = f"not a usable path ({exc})"
    if problem is not None:
        report.at(loc, problem)


def _instance_box(report: Report, loc: tuple, raw: dict, value: dict, size, canvas) -> tuple[Box, Box] | None:
    """R8: scale `box` by size/canvas (`box_norm` by size); outside entirely is an error, partly is clipped.

    Returns (clipped, as drawn), both in output pixels: the token box is clipped, placement uses the drawn box.
    """
    given = [key for key in ("box", "box_norm") if raw.get(key) is not None]
    if len(given) != 1:
        if not given:
            report.at(loc, "needs `box: [x1, y1, x2, y2]` (canvas pixels) or `box_norm:` (fractions 0..1)")
        else:
            report.at(loc + ("box_norm",), "give either `box` or `box_norm`, not both", key=True)
        return None
    key = given[0]
    if size is None or canvas is None or value[key] is None:
        return None
    raw_box, (uw, uh) = value[key], (canvas if key == "box" else (1, 1))
    region = f"the canvas ({num(uw)}x{num(uh)})" if key == "box" else "the canvas (0..1)"
    x1, y1, x2, y2 = raw_box
    if x2 <= 0 or y2 <= 0 or x1 >= uw or y1 >= uh:
        report.at(loc + (key,), f"{key} {nums(raw_box)} lies entirely outside {region}; move it inside")
        return None
    clipped = [max(x1, 0), max(y1, 0), min(x2, uw), min(y2, uh)]
    if clipped != list(raw_box):
        report.warn(loc + (key,), f"{key} {nums(raw_box)} extends past {region}; clipped to {nums(clipped)}")
    w, h = size
    scales = ((w, uw), (h, uh), (w, uw), (h, uh))
    out = tuple(min(v * n / u, n) for v, (n, u) in zip(clipped, scales))  # exact at the edges
    if out[2] <= out[0] or out[3] <= out[1]:
        report.at(loc + (key,), f"{key} {nums(raw_box)} is too small to survive scaling to {w}x{h}; enlarge it")
        return None
    drawn = tuple(v * n / u for v, (n, u) in zip(raw_box, scales))
    return out, drawn


def _partial(report: Report, data: dict, base: Path) -> PartialScene:
    """The instances (and layout) whose file fields validated, for image checks after a failed parse."""
    items = data.get("instances")
    reported = {issue[2] for issue in report.issues}  # field paths that already have an issue

    def usable(loc: tuple) -> bool:
        return report.ok(loc) and field_path(loc) not in reported

    insts = []
    for i, raw in enumerate(items if isinstance(items, list) else ()):
        loc = ("instances", i)
        if not isinstance(raw, dict) or not isinstance(raw.get("image"), str) or not usable(loc + ("image",)):
            continue
        if not usable(loc + ("mask",)) or not isinstance(raw.get("mask", "alpha"), str):
            continue
        mask = raw.get("mask", "alpha")
        mode = mask if mask in ("alpha", "auto") else "file"
        insts.append(Instance(index=i, image=resolve_path(base, raw["image"]), mask_mode=mode,
                              mask=resolve_path(base, mask) if mode == "file" else None, box=(0.0, 0.0, 1.0, 1.0),
                              fit="instance"))
    layout = data.get("layout")
    ok_layout = isinstance(layout, str) and layout != "auto" and usable(("layout",))
    marks = {field_path(loc): mark for loc, mark in report.marks.items() if loc}
    return PartialScene(report.shown, marks, tuple(insts), resolve_path(base, layout) if ok_layout else None)


def _build(doc, report: Report, source: Path, digest: str, boxes: dict[int, tuple[Box, Box]]) -> Scene:
    """The frozen Scene from a fully validated document: paths resolved, fit defaults applied, seeds drawn."""
    base = source.parent
    random_seed = doc.seed is None
    seeds = (secrets.randbelow(2**32),) if random_seed else tuple(doc.seed)
    instances = []
    for i, d in enumerate(doc.instances):
        mode = d.mask if d.mask in ("alpha", "auto") else "file"
        instances.append(Instance(
            index=i, image=resolve_path(base, d.image), mask_mode=mode,
            mask=resolve_path(base, d.mask) if mode == "file" else None, box=boxes[i][0], fit=d.fit or doc.fit,
            label=d.label, phrase=d.phrase, z=d.z, point=tuple(d.point) if d.point is not None else None,
            prompt_box=tuple(d.prompt_box) if d.prompt_box is not None else None,
            line=report.marks[("instances", i)][0],
            drawn_box=boxes[i][1] if boxes[i][1] != boxes[i][0] else None))
    return Scene(
        source=source, digest=digest, prompt=doc.prompt, size=tuple(doc.size), seeds=seeds,
        seed_random=random_seed, steps=doc.steps, guidance=float(doc.guidance),
        layout=None if doc.layout == "auto" else resolve_path(base, doc.layout), ica=doc.ica,
        instances=tuple(instances), warnings=tuple(report.warnings), display_path=report.shown,
        marks={field_path(loc): mark for loc, mark in report.marks.items() if loc})
