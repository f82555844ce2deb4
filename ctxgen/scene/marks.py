"""Scene YAML -> plain data with the 1-based line:col of every value, and one-line issues (R1). Torch-free.

PyYAML is imported inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ctxgen.core.errors import SceneError

if TYPE_CHECKING:
    import yaml

_ONE_LINE = {c: f"\\x{c:02x}" for c in [*range(32), 127, 0x85]} | {0x2028: "\\u2028", 0x2029: "\\u2029"}


def format_issue(shown: str, line: int, col: int, path: str, message: str) -> str:
    """The one issue format: `file:LINE:COL field.path: message`, control characters escaped (one line)."""
    text = f"{shown}:{line}:{col} {path}: {message}".translate(_ONE_LINE)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates as \udXXX


def issue_position(line: str, shown: str) -> tuple[int, int]:
    """(line, col) of a `file:LINE:COL field: message` issue about `shown`, for sorting issues in file order."""
    m = re.match(r"(\d+):(\d+)", line[len(shown) + 1:])
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def field_path(loc: tuple) -> str:
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


def show_value(value: object) -> str:
    """A short YAML-flavoured rendering of a bad value for messages."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if value != value else ("-.inf" if value < 0 else ".inf")
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    text = repr(value) if isinstance(value, (str, int, float)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def validation_message(err: dict, loc: tuple, allowed: Callable[[tuple], list[str]], custom: str = "") -> str:
    """A pydantic error as one clear line (scenes, training and construction configs alike): a missing key, an
    unknown key with the allowed ones and a did-you-mean, a `custom` error's own text, or the message and the value."""
    kind = err["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        name = next((p for p in reversed(loc) if isinstance(p, str)), "")
        keys = allowed(loc)
        close = difflib.get_close_matches(name, keys, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown key {show_value(name)}; {hint}allowed keys: {', '.join(keys)}"
    if custom and kind == custom:
        return err["msg"]
    return f"{err['msg']}; got {show_value(err['input'])}"


def nested_keys(root: object, loc: tuple) -> list[str]:
    """The keys a pydantic model allows at `loc`: follow the fields of `root` (through Optional) to the parent."""
    model = root
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part) if isinstance(part, str) else None
        inner = getattr(field, "annotation", None)
        model = next((m for m in (inner, *getattr(inner, "__args__", ())) if hasattr(m, "model_fields")), None)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def record_validation(report: Report, exc: object, message: Callable[[dict, tuple], str], prefix: tuple = ()) -> None:
    """pydantic errors -> issues in `report`, except those on values that could not even be read."""
    for err in exc.errors(include_url=False):  # type: ignore[attr-defined]
        loc = prefix + tuple(err["loc"])
        report.failed.add(loc)
        if not report.is_bad(loc):
            report.at(loc, message(err, loc), key=err["type"] == "extra_forbidden")


def decode_text(raw: bytes, shown: str) -> str:
    """The scene file's bytes as UTF-8 text; a bad byte is one issue at its line:col."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - raw.rfind(b"\n", 0, exc.start)
        message = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the scene file as UTF-8"
        raise SceneError([format_issue(shown, line, col, "file", message)]) from None


def compose(text: str, shown: str) -> yaml.Node | None:
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
    except (ValueError, OverflowError):  # PyYAML's scanner lets chr() fail on a `\U` escape above U+10FFFF
        line, col = _big_escape(text)
        message = "a \\U escape in a quoted string is above U+10FFFF, the last Unicode character; fix or remove it"
    raise SceneError([format_issue(shown, line, col, "yaml", message)])


def _big_escape(text: str) -> tuple[int, int]:
    """1-based line:col of the first `\\UXXXXXXXX` escape above U+10FFFF (not itself escaped), else 1:1."""
    for m in re.finditer(r"(?<!\\)(?:\\\\)*(\\U([0-9A-Fa-f]{8}))", text):
        if int(m.group(2), 16) > 0x10FFFF:
            pos = m.start(1)
            return text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
    return 1, 1


class Report:
    """The composed YAML as plain data, the 1-based line:col of every node, and the issues found so far."""

    MAX_NODES, MAX_DEPTH = 10_000, 32

    def __init__(self, shown: str):
        import yaml

        self.yaml = yaml
        self.shown = shown
        self.marks: dict[tuple, tuple[int, int]] = {}  # loc -> value position
        self.key_marks: dict[tuple, tuple[int, int]] = {}  # loc -> position of its key
        self.bad: set[tuple] = set()  # values that could not be read (validation errors on them are noise)
        self.failed: set[tuple] = set()  # locs that failed validation
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
            self.at(loc, f"cannot read {show_value(node.value)} as {node.tag.replace('tag:yaml.org,2002:', '!!')}")
            return None

    def _mapping(self, node, loc: tuple) -> dict:
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, self.yaml.ScalarNode):
                self.issues.append((*mark, field_path(loc) or "scene", "keys must be plain names"))
                continue
            key = key_node.value.encode("utf-8", "backslashreplace").decode("utf-8")
            if loc + (key,) in self.key_marks:
                first = self.key_marks[loc + (key,)][0]
                message = f"duplicate key (first at line {first}); keep one"
                self.issues.append((*mark, field_path(loc + (key,)), message))
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
        return mark, field_path(shown) or "scene"

    def at(self, loc: tuple, message: str, key: bool = False) -> None:
        """Record an issue at `loc` (at its key instead of its value when `key`)."""
        mark, path = self._locate(loc, key)
        self.issues.append((*mark, path, message))

    def warn(self, loc: tuple, message: str) -> None:
        mark, path = self._locate(loc, False)
        self.warnings.append(format_issue(self.shown, *mark, path, message))

    def is_bad(self, loc: tuple) -> bool:
        """True when `loc` or one of its parents could not be read from the file."""
        return any(loc[:k] in self.bad for k in range(len(loc) + 1))

    def ok(self, loc: tuple) -> bool:
        """True when nothing at or below `loc` failed validation or reading."""
        return not any(bad[: len(loc)] == loc for bad in self.failed | self.bad)

    def lines(self) -> list[str]:
        return [format_issue(self.shown, *issue) for issue in sorted(set(self.issues))]
