"""Edit scene YAML text in place at the marks PyYAML gives, so every byte outside the edited fields survives.

An edit is an `Op`: `set` a value (replacing it, or adding the key), `delete` a key, `append` to a list,
`remove` a list item. Each op re-reads the text, rewrites only the span of the value it touches (a scalar in
its old quoting style, a flow list item by item), and checks that the new text reads back as exactly the old
data with that one change; anything else is an `EditError` and the text is left as it was. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ctxgen.core.errors import UserError
from ctxgen.edit.yamlnodes import Doc, EditError, Span, block_lines, flow_text, item_lines, one_line_scalar

__all__ = ["EditError", "Op", "apply_ops", "plain_data", "new_scene_text"]

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Op:
    """One edit of the document: set a value, delete a key, append to a list or remove a list item."""

    op: Literal["set", "delete", "append", "remove"]
    path: Path
    value: Any = None


def plain_data(text: str) -> Any:
    """The document as plain data, read like the scene loader reads it (first duplicate key wins)."""
    return Doc(text).data


def apply_ops(text: str, ops: Sequence[Op]) -> str:
    """The text with every op applied in order; each op is checked against the data it should produce."""
    for op in ops:
        text = _apply(text, op)
    return text


def new_scene_text(prompt: str = "Describe the whole picture") -> str:
    """The text of a new, still empty scene (the editor opens it when the file does not exist yet)."""
    return ("# A ctxgen scene: a prompt, an output size and one box per reference cut-out.\n"
            f"prompt: {one_line_scalar(prompt, None)}\nsize: [768, 768]\nseed: 42\nsteps: 28\ninstances: []\n")


def _apply(text: str, op: Op) -> str:
    doc = Doc(text)
    expected = _expected(doc.data, op)
    if op.op == "set" and isinstance(op.value, dict) and isinstance(doc.get(op.path), dict):
        return _set_mapping(text, doc, op)
    edits = _edits(doc, op)
    new = Span.apply(text, edits)
    try:
        got = Doc(new).data
    except (EditError, UserError):
        got = None
    if not _same(got, expected):
        raise EditError(f"could not apply `{op.op} {_show(op.path)}` to the YAML text; edit it in the YAML tab")
    return new


def _set_mapping(text: str, doc: Doc, op: Op) -> str:
    """`set` of a whole mapping: one op per key that changed, so untouched keys keep their text."""
    old = doc.get(op.path)
    for key in [k for k in old if k not in op.value]:
        text = _apply(text, Op("delete", op.path + (key,)))
    for key, value in op.value.items():
        if key not in old or not _same(old[key], value):
            text = _apply(text, Op("set", op.path + (key,), value))
    return text


def _edits(doc: Doc, op: Op) -> list[Span]:
    parent_path, last = op.path[:-1], op.path[-1] if op.path else None
    if op.op == "append":
        return _append(doc, op.path, op.value)
    if last is None:
        raise EditError("an edit needs a field path")
    if op.op == "set":
        if doc.has(op.path):
            return _replace(doc, op.path, op.value)
        if isinstance(last, int):
            raise EditError(f"{_show(op.path)}: no such list item")
        return _insert(doc, parent_path, last, op.value)
    if op.op == "delete":
        return _delete_key(doc, parent_path, last) if doc.has(op.path) else []
    if op.op == "remove":
        return _remove_item(doc, parent_path, last)
    raise EditError(f"unknown edit {op.op!r}")


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _replace(doc: Doc, path: Path, value: Any) -> list[Span]:
    """A new value for an existing one: scalars in their old style, equal-length scalar lists item by item."""
    y, (node, key_node), in_flow = doc.yaml, doc.chain(path)[-1], _in_flow(doc, path)
    if isinstance(node, y.ScalarNode) and _is_scalar(value):
        if _same(doc.get(path), value):
            return []
        return [Span(node.start_mark.index, doc.tight_end(node), one_line_scalar(value, node.style, in_flow))]
    if (isinstance(node, y.SequenceNode) and isinstance(value, list) and len(value) == len(node.value)
            and all(isinstance(n, y.ScalarNode) for n in node.value) and all(map(_is_scalar, value))):
        return [s for i, v in enumerate(value) for s in _replace(doc, path + (i,), v)]
    text = one_line_scalar(value, None, in_flow) if _is_scalar(value) else flow_text(value)
    start = node.start_mark.index
    if key_node is not None and not isinstance(node, y.ScalarNode) and not node.flow_style:
        start = doc.text.index(":", key_node.end_mark.index) + 1  # a block value moves up beside its key
        text = " " + text
    return [Span(start, doc.tight_end(node), text)]


def _in_flow(doc: Doc, path: Path) -> bool:
    """True when the value at `path` sits inside a flow collection (`[...]` or `{...}`)."""
    return any(getattr(node, "flow_style", False) for node, _ in doc.chain(path)[:-1])


def _insert(doc: Doc, parent_path: Path, key: str, value: Any) -> list[Span]:
    """A new key at the end of a mapping: a line at the mapping's indentation, or `, key: v` in flow style."""
    if doc.root is None and not parent_path:
        return [Span(len(doc.text), len(doc.text), doc._newline_before(len(doc.text)) + block_lines(key, value, 0))]
    m = doc.node(parent_path)
    if not isinstance(m, doc.yaml.MappingNode):
        raise EditError(f"{_show(parent_path)} is not a mapping; cannot add `{key}`")
    if m.flow_style or not m.value:
        entry = f"{one_line_scalar(key, None, True)}: {flow_text(value)}"
        if not m.value:
            return [Span(m.start_mark.index + 1, m.end_mark.index - 1, entry)]
        pos = doc.tight_end(m.value[-1][1])
        return [Span(pos, pos, ", " + entry)]
    pos = doc.line_end(doc.tight_end(m.value[-1][1]))
    return [Span(pos, pos, doc._newline_before(pos) + block_lines(key, value, m.value[0][0].start_mark.column))]


def _delete_key(doc: Doc, parent_path: Path, key: str) -> list[Span]:
    """Remove `key: value`: its whole lines when the key starts a line, else up to the next key."""
    m = doc.node(parent_path)
    pairs = m.value
    i = next(i for i, (k, _) in enumerate(pairs) if getattr(k, "value", None) == key)
    k, v = pairs[i]
    if len(pairs) == 1:
        return [Span(m.start_mark.index, doc.tight_end(m), "{}")]
    return _cut(doc, m.flow_style, k.start_mark.index, doc.tight_end(v),
                pairs[i + 1][0].start_mark.index if i + 1 < len(pairs) else None,
                doc.tight_end(pairs[i - 1][1]) if i > 0 else None)


def _remove_item(doc: Doc, parent_path: Path, index: int) -> list[Span]:
    """Remove one list item: its whole lines in a block list, the item and one comma in a flow list."""
    s = doc.node(parent_path)
    if not isinstance(s, doc.yaml.SequenceNode) or not isinstance(index, int) or not 0 <= index < len(s.value):
        raise EditError(f"{_show(parent_path + (index,))}: no such list item")
    items = s.value
    if len(items) == 1:
        return [Span(s.start_mark.index, doc.tight_end(s), "[]")]
    it = items[index]
    start = it.start_mark.index if s.flow_style else doc.dash(it)
    after = items[index + 1] if index + 1 < len(items) else None
    nxt = None if after is None else (after.start_mark.index if s.flow_style else doc.dash(after))
    return _cut(doc, s.flow_style, start, doc.tight_end(it), nxt, doc.tight_end(items[index - 1]) if index else None)


def _cut(doc: Doc, flow: bool, start: int, end: int, next_start: int | None, prev_end: int | None) -> list[Span]:
    """The span that removes one entry [start, end) of a collection, with its separator or its lines."""
    if not flow and doc.starts_line(start):
        return [Span(doc.line_start(start), doc.line_end(end), "")]
    if next_start is not None:
        return [Span(start, next_start, "")]
    return [Span(prev_end if prev_end is not None else start, end, "")]


def _append(doc: Doc, path: Path, value: Any) -> list[Span]:
    """A new last item: a `- ` block item like the previous one, `, item` in a flow list; `key: []` becomes
    a block list when the new item is a mapping."""
    chain = doc.chain(path)
    s = chain[-1][0]
    if not isinstance(s, doc.yaml.SequenceNode):
        raise EditError(f"{_show(path)} is not a list")
    if s.flow_style and s.value:
        pos = doc.tight_end(s.value[-1])
        return [Span(pos, pos, ", " + flow_text(value))]
    if s.flow_style:
        parent, key_node = (chain[-2][0], chain[-1][1]) if len(chain) > 1 else (None, None)
        if isinstance(value, dict) and key_node is not None and not parent.flow_style:
            start = s.start_mark.index
            while start > 0 and doc.text[start - 1] in " \t":
                start -= 1
            lines = item_lines(value, key_node.start_mark.column + 2).rstrip("\n")
            return [Span(start, s.end_mark.index, "\n" + lines)]
        return [Span(s.start_mark.index + 1, s.end_mark.index - 1, flow_text(value))]
    last = s.value[-1]
    dash = doc.dash(last)
    pos = doc.line_end(doc.tight_end(last))
    text = item_lines(value, dash - doc.line_start(dash), last.start_mark.column)
    return [Span(pos, pos, doc._newline_before(pos) + text)]


def _expected(data: Any, op: Op) -> Any:
    """The plain data the document must read as after `op` (a deep copy with the one change)."""
    out = _copy(data)
    parent = out
    for part in op.path[:-1] if op.op != "append" else op.path:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            raise EditError(f"{_show(op.path)}: no such field in the document") from None
    try:
        _change(parent, op)
    except (KeyError, IndexError, TypeError):
        raise EditError(f"{_show(op.path)}: no such field or list item in the document") from None
    if op.op == "set" and parent is None and len(op.path) == 1:
        out = {op.path[0]: op.value}  # the first key of an empty document
    return out


def _change(parent: Any, op: Op) -> None:
    if op.op == "append" and isinstance(parent, list):
        parent.append(op.value)
    elif op.op == "set" and isinstance(parent, list) and isinstance(op.path[-1], int) and op.path[-1] >= 0:
        parent[op.path[-1]] = op.value
    elif op.op == "set" and isinstance(parent, dict):
        parent[op.path[-1]] = op.value
    elif op.op == "delete" and isinstance(parent, dict):
        parent.pop(op.path[-1], None)
    elif op.op == "remove" and isinstance(parent, list) and isinstance(op.path[-1], int) and op.path[-1] >= 0:
        del parent[op.path[-1]]
    elif not (op.op == "set" and parent is None and len(op.path) == 1):
        raise TypeError(op.op)


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def _same(a: Any, b: Any) -> bool:
    """Equal as scene data: numbers by value (1 == 1.0), but a bool is never a number, NaN equals NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (a != a and b != b)
    return type(a) is type(b) and a == b


def _show(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"

