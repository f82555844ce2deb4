"""Stage 1: YAML scene file -> validated, frozen `Scene` (R1, R8). Torch-free."""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

from .errors import SceneError

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in output pixels
Fit = Literal["instance", "distort", "image"]
IcaMode = Literal["official", "paper"]
MaskMode = Literal["alpha", "file", "auto"]

MAX_SCENE_BYTES = 1_000_000  # a scene file is a few hundred bytes; anything this large is a mistake
DEFAULT_SIZE = (768, 768)


@dataclass(frozen=True)
class Instance:
    """One subject: its reference image, mask source and box (already in output pixels, clipped, R8)."""

    index: int  # position in scene order (0-based)
    image: Path  # resolved absolute path
    mask_mode: MaskMode
    mask: Path | None  # resolved path when mask_mode == "file"
    box: Box  # output pixels, clipped to the canvas
    fit: Fit  # resolved: per-instance override, else the scene default
    label: str | None = None
    phrase: str | None = None
    z: int | None = None  # explicit layer, higher on top (R11)
    point: tuple[float, float] | None = None  # SAM prompt point in reference pixels (mask: auto)
    prompt_box: Box | None = None  # SAM prompt box in reference pixels (mask: auto)
    line: int = 0  # 1-based YAML line of this instance, for later error messages


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

    @property
    def stem(self) -> str:
        return self.source.stem

    def where(self, path: str) -> tuple[int, int]:
        """1-based (line, col) of a field path, or of its nearest parent present in the file."""
        while path and path not in self.marks:
            path = re.sub(r"(^|\.)[^.\[]*$|\[\d+\]$", "", path, count=1)  # "a[0].b" -> "a[0]" -> "a" -> ""
        return self.marks.get(path, (1, 1))

    def issue(self, path: str, message: str) -> str:
        """One `file:LINE:COL field.path: message` line about a field of this scene (R1)."""
        return format_issue(self.display_path or str(self.source), *self.where(path), path, message)


_ONE_LINE = {c: f"\\x{c:02x}" for c in [*range(32), 127, 0x85]} | {0x2028: "\\u2028", 0x2029: "\\u2029"}


def format_issue(shown: str, line: int, col: int, path: str, message: str) -> str:
    """The one issue format: `file:LINE:COL field.path: message`, control characters escaped (one line)."""
    text = f"{shown}:{line}:{col} {path}: {message}".translate(_ONE_LINE)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates as \udXXX


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
    from pydantic import ValidationError

    shown = os.fspath(path)
    source = Path(shown)
    raw = _read_scene_bytes(source, shown)
    root = _compose(_decode(raw, shown), shown)
    report = _Report(shown)
    data = report.walk(root) if root is not None else None
    if not isinstance(data, dict):
        got = "the file is empty" if root is None else f"got {_show(data)}"
        report.at((), f"a scene is a mapping with `prompt:`, `instances:` and optional settings; {got}")
        raise SceneError(report.lines())
    doc = None
    try:
        doc = _models().scene.model_validate(data)
    except ValidationError as exc:
        report.pydantic(exc)
    items = data.get("instances")
    for i, item in enumerate(items if isinstance(items, list) else ()):  # pydantic skips them past 16
        try:
            _models().instance.model_validate(item)
        except ValidationError as exc:
            report.pydantic(exc, ("instances", i))
    source = source.resolve()
    boxes = _semantics(report, data, source.parent)
    if report.issues or doc is None:
        raise SceneError(report.lines())
    return _build(doc, report, source, hashlib.sha256(raw).hexdigest(), boxes)


def scene_json_schema() -> dict:
    """The JSON Schema of a scene document (for `ctxgen schema` and editor completion)."""
    schema = _models().scene.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ctxgen scene"
    return schema


def _read_scene_bytes(source: Path, shown: str) -> bytes:
    problem = file_problem(source, "scene file", hint="")
    if problem is None and source.stat().st_size > MAX_SCENE_BYTES:
        problem = f"larger than {MAX_SCENE_BYTES:,} bytes; this is not a scene file"
    if problem is None:
        try:
            return source.read_bytes()
        except OSError as exc:
            problem = f"cannot read scene file: {exc.strerror or exc}"
    raise SceneError([format_issue(shown, 1, 1, "file", problem)])


def _decode(raw: bytes, shown: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - raw.rfind(b"\n", 0, exc.start)
        message = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the scene file as UTF-8"
        raise SceneError([format_issue(shown, line, col, "file", message)]) from None


def _compose(text: str, shown: str) -> yaml.Node | None:
    """The YAML node tree (marks kept); a syntax error is one issue at the parser's line:col."""
    import yaml

    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark, message = exc.problem_mark or exc.context_mark, exc.problem or "invalid YAML"
        if exc.context:
            where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
            message = f"{message} ({exc.context}{where})"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    except yaml.reader.ReaderError as exc:
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - text.rfind("\n", 0, exc.position)
        message = f"character U+{code:04X} is not allowed in YAML; remove it"
    except RecursionError:
        line, col, message = 1, 1, "the document nests too deeply"
    except ValueError as exc:  # PyYAML's scanner lets chr() fail on a `\U` escape above U+10FFFF
        line, col, message = 1, 1, f"invalid escape in a quoted string ({exc})"
    raise SceneError([format_issue(shown, line, col, "yaml", message)])


def _path(loc: tuple) -> str:
    """('instances', 0, 'box') -> 'instances[0].box'; keys that are not plain names are quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w-]*", part, re.ASCII):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _show(value: object) -> str:
    """A short YAML-flavoured rendering of a bad value for messages."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if value != value else ("-.inf" if value < 0 else ".inf")
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    text = repr(value) if isinstance(value, (str, int, float)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _nums(values) -> str:
    return "[" + ", ".join(_num(v) for v in values) + "]"


_SHAPES = {"size": "[width, height]", "canvas": "[width, height]", "point": "[x, y]", "box": "[x1, y1, x2, y2]",
           "box_norm": "[x1, y1, x2, y2]", "prompt_box": "[x1, y1, x2, y2]", "instances": "1 to 16 instances",
           "seed": "at least one seed"}


def _message(err: dict, loc: tuple) -> str:
    """A pydantic error as one clear line: unknown keys list the allowed ones, bad values are shown."""
    kind = err["type"]
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        in_instance = len(loc) == 3 and loc[0] == "instances" and isinstance(loc[1], int)
        allowed = list((_models().instance if in_instance else _models().scene).model_fields)
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown key {_show(name)}; {hint}allowed keys: {', '.join(allowed)}"
    if kind in ("too_short", "too_long"):
        return f"needs {_SHAPES.get(name, 'a different number of items')}; got {len(err['input'])}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "scene":
        return err["msg"]
    return f"{err['msg']}; got {_show(err['input'])}"


class _Report:
    """The composed YAML as plain data, the 1-based line:col of every node, and the issues found so far."""

    MAX_NODES, MAX_DEPTH = 10_000, 32

    def __init__(self, shown: str):
        import yaml

        self.yaml = yaml
        self.shown = shown
        self.marks: dict[tuple, tuple[int, int]] = {}  # loc -> value position
        self.key_marks: dict[tuple, tuple[int, int]] = {}  # loc -> position of its key
        self.bad: set[tuple] = set()  # values that could not be read (pydantic's errors on them are noise)
        self.failed: set[tuple] = set()  # locs of pydantic errors
        self.issues: list[tuple[int, int, str, str]] = []
        self.warnings: list[str] = []
        self._ctor, self._count = yaml.constructor.SafeConstructor(), 0

    def walk(self, node, loc: tuple = ()) -> object:
        """Plain data from a node; duplicate keys and unreadable scalars become issues (aliases allowed, bounded)."""
        yaml = self.yaml
        mark = (node.start_mark.line + 1, node.start_mark.column + 1)
        self._count += 1
        if self._count > self.MAX_NODES or len(loc) > self.MAX_DEPTH:
            message = (f"the document nests deeper than {self.MAX_DEPTH} levels or holds more than "
                       f"{self.MAX_NODES:,} values (an alias loop?); write the scene out plainly")
            raise SceneError([format_issue(self.shown, *mark, "yaml", message)])
        self.marks[loc] = mark
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(child, loc + (i,)) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        try:
            value = self._ctor.construct_object(node)
            if isinstance(value, str):
                value.encode("utf-8")  # a `\ud800` escape makes a lone surrogate: no encoder can take it
            return value
        except UnicodeEncodeError:
            self.bad.add(loc)
            self.at(loc, "contains an escaped lone surrogate (\\ud800-\\udfff); remove it")
            return None
        except (yaml.YAMLError, ValueError, TypeError, LookupError, AttributeError, ArithmeticError):
            # explicitly tagged scalars (`!!int x`, `!!bool y`, `!!timestamp z`) fail in all these ways
            self.bad.add(loc)
            self.at(loc, f"cannot read {_show(node.value)} as {node.tag.replace('tag:yaml.org,2002:', '!!')}")
            return None

    def _mapping(self, node, loc: tuple) -> dict:
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, self.yaml.ScalarNode):
                self.issues.append((*mark, _path(loc) or "scene", "keys must be plain names"))
                continue
            key = key_node.value.encode("utf-8", "backslashreplace").decode("utf-8")
            if loc + (key,) in self.key_marks:
                first = self.key_marks[loc + (key,)][0]
                self.issues.append((*mark, _path(loc + (key,)), f"duplicate key (first at line {first}); keep one"))
                continue
            self.key_marks[loc + (key,)] = mark
            out[key] = self.walk(value_node, loc + (key,))
        return out

    def _locate(self, loc: tuple, key: bool) -> tuple[tuple[int, int], str]:
        """The deepest node of `loc` that exists in the file, and the field path to print."""
        shown, mark = (), self.marks.get((), (1, 1))
        for part in loc:
            if shown + (part,) in self.marks:
                shown += (part,)
                mark = self.marks[shown]
            elif isinstance(part, str):  # a missing key: print it, point at its parent
                shown += (part,)
                break
        if key and shown in self.key_marks:
            mark = self.key_marks[shown]
        return mark, _path(shown) or "scene"

    def at(self, loc: tuple, message: str, key: bool = False) -> None:
        mark, path = self._locate(loc, key)
        self.issues.append((*mark, path, message))

    def warn(self, loc: tuple, message: str) -> None:
        mark, path = self._locate(loc, False)
        self.warnings.append(format_issue(self.shown, *mark, path, message))

    def pydantic(self, exc, prefix: tuple = ()) -> None:
        for err in exc.errors(include_url=False):
            loc = prefix + tuple(err["loc"])
            self.failed.add(loc)
            if not any(loc[:k] in self.bad for k in range(len(loc) + 1)):
                self.at(loc, _message(err, loc), key=err["type"] == "extra_forbidden")

    def ok(self, loc: tuple) -> bool:
        """True when nothing at or below `loc` failed validation or reading."""
        return not any(bad[: len(loc)] == loc for bad in self.failed | self.bad)

    def lines(self) -> list[str]:
        return [format_issue(self.shown, *issue) for issue in sorted(set(self.issues))]


def _fail(message: str):
    from pydantic_core import PydanticCustomError

    return PydanticCustomError("scene", message)


def _check_box(v: list[float]) -> list[float]:
    """R8: x2 > x1 and y2 > y1; zero area or an inverted box is an error."""
    problems = []
    for i, side in ((0, "width"), (1, "height")):
        lo, hi, (a, b) = f"{'xy'[i]}1", f"{'xy'[i]}2", (v[i], v[i + 2])
        if b < a:
            problems.append(f"{hi} ({_num(b)}) must be greater than {lo} ({_num(a)}); swap them")
        elif b == a:
            problems.append(f"{hi} equals {lo} ({_num(a)}): the box has zero {side}")
    if problems:
        raise _fail("; ".join(problems))
    return v


def _check_size(v: list[int]) -> list[int]:
    """Output size: multiples of 16 (one token = 16 px, R13) within 256..2048."""
    problems = []
    for name, x in zip(("width", "height"), v):
        if not 256 <= x <= 2048:
            problems.append(f"{name} {x} is outside 256..2048")
        elif x % 16:
            problems.append(f"{name} {x} is not a multiple of 16; use {x - x % 16} or {x - x % 16 + 16}")
    if problems:
        raise _fail("; ".join(problems))
    return v


def _check_prompt(v: str) -> str:
    if not v.strip():
        raise _fail("must not be empty; describe the whole picture")
    return v


def _seed_list(v: object) -> object:
    if v is None or isinstance(v, list):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return [v]
    raise _fail(f"should be an integer >= 0 or a list of them (one image each); got {_show(v)}")


@functools.cache
def _models() -> SimpleNamespace:
    """The pydantic document models, built on first use so that importing this module stays cheap."""
    from typing import Annotated, Optional, Union

    from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

    Num = Annotated[float, Field(strict=True)]
    NonNeg = Annotated[float, Field(strict=True, ge=0)]
    Text = Annotated[str, Field(strict=True)]
    PathText = Annotated[str, Field(strict=True, min_length=1)]
    Seed = Annotated[int, Field(strict=True, ge=0, lt=2**32)]
    Box4 = Annotated[list[Num], Field(min_length=4, max_length=4), AfterValidator(_check_box)]
    RefBox = Annotated[list[NonNeg], Field(min_length=4, max_length=4), AfterValidator(_check_box)]
    Size = Annotated[list[Annotated[int, Field(strict=True)]], Field(min_length=2, max_length=2),
                     AfterValidator(_check_size)]
    Canvas = Annotated[list[Annotated[float, Field(strict=True, ge=1)]], Field(min_length=2, max_length=2)]
    Seeds = Annotated[Optional[Annotated[list[Seed], Field(min_length=1)]],
                      BeforeValidator(_seed_list, json_schema_input_type=Optional[Union[Seed, list[Seed]]])]
    strict = {"extra": "forbid", "allow_inf_nan": False}

    class InstanceDoc(BaseModel):
        """One subject: a reference cut-out and the box it goes in (exactly one of box / box_norm)."""

        model_config = ConfigDict(**strict, json_schema_extra={"oneOf": [{"required": ["box"]},
                                                                         {"required": ["box_norm"]}]})
        image: PathText = Field(description="RGBA cut-out, or an RGB image together with `mask`")
        mask: PathText = Field("alpha", description="`alpha` (default), `auto` (SAM 2) or a mask image path")
        box: Optional[Box4] = Field(None, description="x1, y1, x2, y2 in canvas pixels")
        box_norm: Optional[Box4] = Field(None, description="x1, y1, x2, y2 as fractions 0..1 of the size")
        label: Optional[Text] = None
        phrase: Optional[Text] = None
        fit: Optional[Fit] = Field(None, description="placement in the box; default: the scene's `fit`")
        z: Optional[Annotated[int, Field(strict=True)]] = Field(None, description="explicit layer, higher on top")
        point: Optional[Annotated[list[NonNeg], Field(min_length=2, max_length=2)]] = None
        prompt_box: Optional[RefBox] = None

    class SceneDoc(BaseModel):
        """A ctxgen scene: a prompt, an output size and 1..16 reference instances with boxes."""

        model_config = ConfigDict(**strict)
        prompt: Annotated[Text, AfterValidator(_check_prompt)] = Field(json_schema_extra={"minLength": 1})
        size: Size = Field(list(DEFAULT_SIZE), description="output width, height: multiples of 16, 256..2048")
        canvas: Optional[Canvas] = Field(None, description="coordinate space of `box`; default: size")
        seed: Seeds = Field(None, description="an integer or a list (one image each); default: random")
        steps: Annotated[int, Field(strict=True, ge=1, le=200)] = 28
        guidance: Annotated[float, Field(strict=True, ge=0)] = 3.5
        layout: PathText = Field("auto", description="`auto`, or an RGBA layout image path")
        fit: Fit = "instance"
        ica: IcaMode = "official"
        instances: Annotated[list[InstanceDoc], Field(min_length=1, max_length=16)]

    return SimpleNamespace(scene=SceneDoc, instance=InstanceDoc)


def _semantics(report: _Report, data: dict, base: Path) -> dict[int, Box]:
    """Checks across fields and against the disk, on every raw value that validated; returns output-pixel boxes."""
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


def _check_file(report: _Report, loc: tuple, base: Path, text: str, what: str) -> None:
    try:
        problem = file_problem(resolve_path(base, text), what)
    except (OSError, ValueError, RuntimeError) as exc:
        problem = f"not a usable path ({exc})"
    if problem is not None:
        report.at(loc, problem)


def _instance_box(report: _Report, loc: tuple, raw: dict, value: dict, size, canvas) -> Box | None:
    """R8: scale `box` by size/canvas (`box_norm` by size); outside entirely is an error, partly is clipped."""
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
    region = f"the canvas ({_num(uw)}x{_num(uh)})" if key == "box" else "the canvas (0..1)"
    x1, y1, x2, y2 = raw_box
    if x2 <= 0 or y2 <= 0 or x1 >= uw or y1 >= uh:
        report.at(loc + (key,), f"{key} {_nums(raw_box)} lies entirely outside {region}; move it inside")
        return None
    clipped = [max(x1, 0), max(y1, 0), min(x2, uw), min(y2, uh)]
    if clipped != list(raw_box):
        report.warn(loc + (key,), f"{key} {_nums(raw_box)} extends past {region}; clipped to {_nums(clipped)}")
    w, h = size
    out = tuple(min(v * n / u, n) for v, n, u in zip(clipped, (w, h, w, h), (uw, uh, uw, uh)))  # exact at the edges
    if out[2] <= out[0] or out[3] <= out[1]:
        report.at(loc + (key,), f"{key} {_nums(raw_box)} is too small to survive scaling to {w}x{h}; enlarge it")
        return None
    return out


def _build(doc, report: _Report, source: Path, digest: str, boxes: dict[int, Box]) -> Scene:
    """The frozen Scene from a fully validated document: paths resolved, fit defaults applied, seeds drawn."""
    base = source.parent
    random_seed = doc.seed is None
    seeds = (secrets.randbelow(2**32),) if random_seed else tuple(doc.seed)
    instances = []
    for i, d in enumerate(doc.instances):
        mode = d.mask if d.mask in ("alpha", "auto") else "file"
        instances.append(Instance(
            index=i, image=resolve_path(base, d.image), mask_mode=mode,
            mask=resolve_path(base, d.mask) if mode == "file" else None, box=boxes[i], fit=d.fit or doc.fit,
            label=d.label, phrase=d.phrase, z=d.z, point=tuple(d.point) if d.point is not None else None,
            prompt_box=tuple(d.prompt_box) if d.prompt_box is not None else None,
            line=report.marks[("instances", i)][0]))
    return Scene(
        source=source, digest=digest, prompt=doc.prompt, size=tuple(doc.size), seeds=seeds,
        seed_random=random_seed, steps=doc.steps, guidance=float(doc.guidance),
        layout=None if doc.layout == "auto" else resolve_path(base, doc.layout), ica=doc.ica,
        instances=tuple(instances), warnings=tuple(report.warnings), display_path=report.shown,
        marks={_path(loc): mark for loc, mark in report.marks.items() if loc})
