"""Where each value of a YAML text lies, and the text spans that change one value: the mechanics under
`ctxgen.edit.yamledit`. Torch-free; PyYAML is imported inside `Doc`.

Block collections end (for PyYAML) at the next token, past any comments that follow them; every span here
uses the *tight* end instead (the last character of the last scalar), so comments after a value are kept.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ctxgen.core.errors import SceneError, UserError
from ctxgen.scene.marks import Report

_BREAKS = re.compile("[\n\r\x85\u2028\u2029]")


class EditError(UserError):
    """An edit that cannot be applied to the YAML text as asked; the text is unchanged."""


@dataclass(frozen=True)
class Span:
    """Replace text[start:end] by `text`."""

    start: int
    end: int
    text: str

    @staticmethod
    def apply(source: str, spans: list[Span]) -> str:
        """Apply non-overlapping spans, last first so earlier offsets stay valid."""
        out, limit = source, len(source) + 1
        for span in sorted(spans, key=lambda s: (s.start, s.end), reverse=True):
            if span.end > limit:
                raise EditError("internal: overlapping edits")
            out = out[: span.start] + span.text + out[span.end:]
            limit = span.start
        return out


def _strip_end(dumped: str) -> str:
    """PyYAML's dump of one scalar without its line break and `...` document end."""
    return dumped.removesuffix("\n...\n").removesuffix("\n")


def one_line_scalar(value: Any, style: str | None, flow: bool = False) -> str:
    """A scalar on one line; strings keep the old quoting style where possible (`"`, `'` or plain)."""
    import yaml

    inf = math.inf
    if isinstance(value, str):
        quote = style if style in ('"', "'") else None
        out = _strip_end(yaml.safe_dump(value, default_style=quote, allow_unicode=True, width=inf))
        if _BREAKS.search(out) or not _reads_back(out, value, flow):
            out = _strip_end(yaml.safe_dump(value, default_style='"', allow_unicode=True, width=inf))
        return out
    if value is None or isinstance(value, (bool, int)):
        return _strip_end(yaml.safe_dump(value))
    if isinstance(value, float):
        return _strip_end(yaml.safe_dump(value)) if math.isfinite(value) else ".nan"
    raise EditError(f"cannot write a {type(value).__name__} into a scene")


def _reads_back(text: str, value: str, flow: bool) -> bool:
    """True when `text` reads as `value` where it goes: after `key: `, or inside `[...]` / `{...}`."""
    import yaml

    try:
        got = yaml.safe_load(f"[{text}]") if flow else yaml.safe_load(f"k: {text}")
    except yaml.YAMLError:
        return False
    return got == ([value] if flow else {"k": value})


def flow_text(value: Any) -> str:
    """A value in YAML flow style on one line: `[1, 2]`, `{image: a.png, box: [1, 2, 3, 4]}`."""
    if isinstance(value, list):
        return "[" + ", ".join(flow_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{one_line_scalar(str(k), None, True)}: {flow_text(v)}" for k, v in value.items()) + "}"
    return one_line_scalar(value, None, flow=True)


def block_lines(key: str, value: Any, indent: int) -> str:
    """`key: value` as block YAML lines at `indent`; mappings and lists of mappings nest, the rest is flow."""
    pad, name = " " * indent, one_line_scalar(str(key), None)
    if isinstance(value, dict) and value:
        return f"{pad}{name}:\n" + "".join(block_lines(k, v, indent + 2) for k, v in value.items())
    if isinstance(value, list) and any(isinstance(v, dict) and v for v in value):
        return f"{pad}{name}:\n" + "".join(item_lines(v, indent + 2) for v in value)
    return f"{pad}{name}: {flow_text(value)}\n"


def item_lines(value: Any, dash_col: int, content_col: int | None = None) -> str:
    """One block sequence item: `- key: v` with the other keys under the first (or `- value`)."""
    content_col = dash_col + 2 if content_col is None or content_col <= dash_col else content_col
    lead = " " * dash_col + "-" + " " * (content_col - dash_col - 1)
    if isinstance(value, dict) and value:
        body = "".join(block_lines(k, v, content_col) for k, v in value.items())
        return lead + body[content_col:]
    return lead + flow_text(value) + "\n"


class Doc:
    """A YAML text composed once: its plain data (read as the scene loader reads it) and the node of any path."""

    def __init__(self, text: str):
        import yaml

        self.yaml, self.text = yaml, text
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = Report("edit").walk(self.root) if self.root is not None else None
        except (yaml.YAMLError, SceneError) as exc:
            raise EditError(f"the YAML text does not parse ({str(exc).splitlines()[0]}); fix it in the YAML tab") from None

    # -- finding values ------------------------------------------------------------------------------------
    def chain(self, path: tuple) -> list[tuple[Any, Any]]:
        """[(node, key node or None)] from the root down to `path`; aliases (shared nodes) are refused."""
        node, out = self.root, [(self.root, None)]
        for part in path:
            key_node, child = None, None
            if isinstance(node, self.yaml.MappingNode) and isinstance(part, str):
                key_node, child = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part),
                                       (None, None))
                if child is not None and child.start_mark.index < key_node.end_mark.index:
                    raise EditError(f"{part} is a YAML alias (*name); edit it in the YAML tab")
            elif isinstance(node, self.yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                child = node.value[part]
                if child.start_mark.index < node.start_mark.index:
                    raise EditError(f"item {part} is a YAML alias (*name); edit it in the YAML tab")
            if child is None:
                raise KeyError(part)
            node = child
            out.append((node, key_node))
        return out

    def node(self, path: tuple) -> Any:
        return self.chain(path)[-1][0]

    def has(self, path: tuple) -> bool:
        try:
            self.chain(path)
        except KeyError:
            return False
        return True

    def get(self, path: tuple) -> Any:
        value = self.data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    # -- positions -----------------------------------------------------------------------------------------
    def tight_end(self, node: Any) -> int:
        """Offset just past the last character that belongs to `node` (comments after it excluded)."""
        y = self.yaml
        if isinstance(node, y.ScalarNode):
            end = node.end_mark.index
            if node.style in ("|", ">"):
                while end > node.start_mark.index and self.text[end - 1] in " \t\r\n":
                    end -= 1
            return end
        if node.flow_style or not node.value:
            return node.end_mark.index
        last = node.value[-1]
        return self.tight_end(last[1] if isinstance(node, y.MappingNode) else last)

    def line_start(self, i: int) -> int:
        return self.text.rfind("\n", 0, i) + 1

    def line_end(self, i: int) -> int:
        """Offset just past the line break ending the line that holds offset `i` (or the end of the text)."""
        j = self.text.find("\n", i)
        return len(self.text) if j < 0 else j + 1

    def starts_line(self, i: int) -> bool:
        return not self.text[self.line_start(i): i].strip()

    def dash(self, item: Any) -> int:
        """Offset of the `-` that opens a block sequence item."""
        return self.text.rfind("-", 0, item.start_mark.index)

    def _newline_before(self, pos: int) -> str:
        return "" if pos == 0 or self.text[pos - 1] == "\n" else "\n"
