"""Fuzzing `load_scene`: any document, valid or broken, yields a Scene or a SceneError of one-line issues."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ctxgen.core.errors import SceneError
from ctxgen.scene.model import Scene, load_scene

REFS = ["refs/cut.png", "refs/photo.png", "refs/mask.png"]
FRAGMENTS = [":", ": ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!!int ", "!!bool ", "!!timestamp ", "!foo ",
             "\t", "\n", "  ", "'", '"', "#", "? ", "---\n", "...\n", "<<: *a\n", ".nan", ".inf", "~", "%YAML 1.1\n",
             "- image: refs/cut.png\n", "    box: [1, 2, 3, 4]\n", "prompt: x\n", "\ufeff", "\u2028", "\x85"]

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=10)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=10)
numbers = st.integers(-100, 3000) | st.floats(-100, 3000) | st.sampled_from([float("nan"), float("inf"), -1e308])
boxes = st.lists(numbers, min_size=3, max_size=5) | values
paths = st.sampled_from(REFS + ["nope.png", "refs", "", "auto", "alpha", "~nobody/x.png", "a\x00b"]) | values
extras = st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=2)


def with_extras(base: st.SearchStrategy) -> st.SearchStrategy:
    """Mappings from `base`, sometimes with unknown keys mixed in."""
    return st.tuples(base, extras).map(lambda pair: {**pair[0], **pair[1]})


instances = with_extras(st.fixed_dictionaries({"image": paths}, optional={
    "mask": paths, "box": boxes, "box_norm": st.lists(st.floats(-1, 2), min_size=4, max_size=4) | values,
    "label": st.text(max_size=8) | values, "fit": st.sampled_from(["instance", "distort", "x"]) | values,
    "z": st.integers(-3, 3) | values, "point": st.lists(numbers, min_size=2, max_size=2) | values,
    "prompt_box": boxes}))
documents = with_extras(st.fixed_dictionaries(
    {"prompt": st.text(max_size=20) | values, "instances": st.lists(instances, max_size=17) | values},
    optional={"size": st.lists(st.integers(0, 3000), min_size=1, max_size=3) | values,
              "canvas": st.lists(numbers, min_size=2, max_size=2) | values,
              "seed": st.integers(-5, 2**33) | st.lists(st.integers(-5, 2**33), max_size=3) | values,
              "steps": st.integers(-1, 300) | values, "guidance": numbers | values, "layout": paths,
              "fit": st.sampled_from(["instance", "image", "y"]) | values,
              "ica": st.sampled_from(["official", "paper", "z"]) | values}))


@st.composite
def scene_bytes(draw: st.DrawFn) -> bytes:
    """A dumped document (a random one or a valid one), then a few text mutations (YAML syntax fragments,
    deletions, lines moved, raw bytes): some load, most do not."""
    style = draw(st.sampled_from([False, None, True]))
    doc = draw(documents | st.deferred(lambda: valid_scene().map(lambda case: case[0])))
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=style, allow_unicode=True)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "line"]))
        if kind == "insert":
            text = text[:i] + draw(st.sampled_from(FRAGMENTS) | st.text(max_size=3)) + text[i:]
        elif kind == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 8)):]
        else:
            lines = text.splitlines(keepends=True) or [""]
            text = "".join(draw(st.permutations(lines)) if len(lines) < 8 else lines + lines[:1])
    data = text.encode("utf-8")
    if draw(st.booleans()) and draw(st.booleans()):  # a quarter: raw bytes, possibly not UTF-8
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.binary(min_size=1, max_size=3)) + data[i:]
    return data


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "refs").mkdir()
    for name, mode in zip(REFS, ("RGBA", "RGB", "L")):
        Image.new(mode, (32, 24)).save(root / name)
    return root


def check(folder: Path, data: bytes) -> Scene | None:
    """load_scene gives a consistent Scene, or a SceneError of `file:line:col field: message` lines."""
    path = folder / "s.yaml"
    path.write_bytes(data)
    line = re.compile(re.escape(str(path)) + r":[1-9]\d*:[1-9]\d* \S.*: \S")
    try:
        scene = load_scene(path)
    except SceneError as exc:
        assert exc.issues and all(line.match(i) and len(i.splitlines()) == 1 for i in exc.issues), exc.issues
        return None
    w, h = scene.size
    assert 1 <= len(scene.instances) <= 16 and scene.seeds and all(0 <= s < 2**32 for s in scene.seeds)
    for inst in scene.instances:
        x1, y1, x2, y2 = inst.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h and inst.line >= 1 and inst.image.is_file()
    assert all(line.match(warning) for warning in scene.warnings)
    return scene


@settings(max_examples=300, deadline=None)
@given(data=scene_bytes())
def test_load_scene_raises_only_scene_errors(folder: Path, data: bytes) -> None:
    check(folder, data)


@pytest.mark.fuzz
@settings(max_examples=10_000, deadline=None)
@given(data=scene_bytes())
def test_load_scene_raises_only_scene_errors_at_scale(folder: Path, data: bytes) -> None:
    check(folder, data)


size_16 = st.integers(16, 128).map(lambda n: n * 16)


@st.composite
def valid_scene(draw: st.DrawFn) -> tuple[dict, list[tuple[float, ...]]]:
    """A valid document and the output-pixel boxes it must produce (canvas scaling, R8)."""
    size = [draw(size_16), draw(size_16)]
    canvas = draw(st.none() | st.tuples(st.integers(16, 4000), st.integers(16, 4000)).map(list))
    cw, ch = canvas or size
    items, expected = [], []
    for _ in range(draw(st.integers(1, 16))):
        x1, x2 = sorted(draw(st.lists(st.integers(0, cw), min_size=2, max_size=2, unique=True)))
        y1, y2 = sorted(draw(st.lists(st.integers(0, ch), min_size=2, max_size=2, unique=True)))
        items.append({"image": "refs/cut.png", "box": [x1, y1, x2, y2]})
        expected.append((x1 * size[0] / cw, y1 * size[1] / ch, x2 * size[0] / cw, y2 * size[1] / ch))
    doc = {"prompt": draw(st.text(min_size=1, max_size=30).filter(str.strip)), "size": size, "instances": items}
    if canvas is not None:
        doc["canvas"] = canvas
    return doc, expected


@settings(max_examples=100, deadline=None)
@given(case=valid_scene())
def test_valid_documents_load(folder: Path, case: tuple[dict, list]) -> None:
    doc, expected = case
    scene = check(folder, yaml.safe_dump(doc, allow_unicode=True).encode("utf-8"))
    assert scene is not None and scene.warnings == ()
    got = [v for inst in scene.instances for v in inst.box]
    assert got == pytest.approx([v for box in expected for v in box], rel=1e-12)
