"""Editing scene YAML in place: every edit reads back as exactly the asked change, and every other byte stays."""

from __future__ import annotations

import difflib

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctxgen.edit.yamledit import EditError, Op, apply_ops, new_scene_text, plain_data

BLOCK = """\
# scene
prompt: "A dog"   # quoted
size: [512, 512]
seed: 1

instances:
  # first
  - image: refs/a.png
    box: [0, 0, 100, 100]  # a box
    label: 'dog'
  - image: refs/b.png
    box:
      - 10
      - 20
      - 300
      - 400
    phrase: >
      a folded
      phrase

# the end
"""
FLOW = """\
prompt: |
  A literal
  prompt
instances: [{image: a.png, box: [1, 2, 3, 4]}, {image: b.png, box_norm: [0.1, 0.2, 0.3, 0.4], z: -1}]
steps: 4
"""
INDENTLESS = """\
prompt: cats
instances:
- image: a.png
  box: [1, 2, 3, 4]
-   image: b.png
    box: [5, 6, 7, 8]
"""
DOCS = [BLOCK, FLOW, INDENTLESS]

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
scalar = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False), text, st.booleans(),
                   st.none())
value = st.one_of(scalar, st.lists(st.integers(0, 2000), min_size=4, max_size=4), st.lists(scalar, max_size=3))
field = st.sampled_from(["box", "label", "z", "phrase", "fit", "image", "point", "mask"])


def lines_changed(old: str, new: str) -> list[str]:
    return [d for d in difflib.ndiff(old.splitlines(True), new.splitlines(True)) if d[:1] in "+-"]


# 0-based first and last line of each value of BLOCK, key line included
BLOCK_LINES = {(0, "image"): (7, 7), (0, "box"): (8, 8), (0, "label"): (9, 9), (1, "image"): (10, 10),
               (1, "box"): (11, 15), (1, "phrase"): (16, 18)}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DOCS), st.integers(0, 1), field, value)
def test_setting_a_field_changes_only_its_own_lines(doc, index, key, new):
    out = apply_ops(doc, [Op("set", ("instances", index, key), new)])
    want = plain_data(doc)
    want["instances"][index][key] = new
    assert plain_data(out) == want
    if doc is not BLOCK:
        return
    old, got = doc.splitlines(True), out.splitlines(True)
    if (index, key) in BLOCK_LINES:
        first, last = BLOCK_LINES[(index, key)]
        tail = len(old) - last - 1
        assert got[:first] == old[:first] and got[len(got) - tail:] == old[last + 1:]
        in_place = (index, key) == (1, "box") and isinstance(new, list) and len(new) == 4  # item by item
        assert len(got) - tail - first == (last - first + 1 if in_place else 1), "one line, or the old lines"
        if key in ("box", "label", "image") and index == 0:
            assert got[first].startswith(old[first].split(":")[0] + ": "), "the key keeps its place"
    else:
        assert [c for c in lines_changed(doc, out) if c.startswith("- ")] == [], "a new key only adds lines"


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(DOCS), st.integers(0, 1), field)
def test_deleting_a_key_removes_nothing_else(doc, index, key):
    out = apply_ops(doc, [Op("delete", ("instances", index, key))])
    want = plain_data(doc)
    want["instances"][index].pop(key, None)
    assert plain_data(out) == want
    if doc is BLOCK and key != "image":  # the first key of an item: see test_the_first_key_of_an_item_can_be_deleted
        assert all(c.startswith("- ") for c in lines_changed(doc, out)), "only removed lines"


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(DOCS), st.dictionaries(st.sampled_from(["label", "phrase", "z", "fit"]), scalar, max_size=3))
def test_appending_then_removing_an_instance_gives_the_text_back(doc, extra):
    item = {"image": "refs/new.png", "box": [1, 2, 30, 40], **extra}
    grown = apply_ops(doc, [Op("append", ("instances",), item)])
    assert plain_data(grown)["instances"][-1] == item
    assert grown.startswith(doc.rstrip("\n").rsplit("\n# the end", 1)[0][:40])
    back = apply_ops(grown, [Op("remove", ("instances", 2))])
    assert plain_data(back) == plain_data(doc)
    if doc is not FLOW:
        assert back == doc


def test_a_box_edit_keeps_comments_quotes_and_layout():
    out = apply_ops(BLOCK, [Op("set", ("instances", 0, "box"), [8, 16, 120, 130]),
                            Op("set", ("instances", 1, "box"), [10, 20, 330, 400]),
                            Op("set", ("prompt",), "A dog's day"), Op("set", ("instances", 0, "label"), "hound")])
    assert out == (BLOCK.replace("[0, 0, 100, 100]", "[8, 16, 120, 130]").replace("- 300", "- 330")
                   .replace('"A dog"', '"A dog\'s day"').replace("'dog'", "'hound'"))


def test_new_keys_follow_the_mapping_indentation_and_flow_style():
    out = apply_ops(INDENTLESS, [Op("set", ("instances", 1, "z"), 2), Op("set", ("instances", 0, "label"), "a: b")])
    assert "    box: [5, 6, 7, 8]\n    z: 2\n" in out and "  box: [1, 2, 3, 4]\n  label: 'a: b'\n" in out
    flow = apply_ops(FLOW, [Op("set", ("instances", 0, "label"), "x, y"), Op("delete", ("instances", 1, "z"))])
    assert "{image: a.png, box: [1, 2, 3, 4], label: \"x, y\"}" in flow and "z: -1" not in flow
    assert flow.startswith("prompt: |\n  A literal\n  prompt\n")


@pytest.mark.parametrize("label", ["0?", "a: b", "x, y", "[z]", "#no", "- dash", "null", "yes", "  pad ", "é ü", "tab\t"])
def test_awkward_strings_read_back_in_flow_and_block_style(label):
    for doc in (FLOW, BLOCK):
        out = apply_ops(doc, [Op("set", ("instances", 0, "label"), label), Op("set", ("instances", 1, "label"), label)])
        assert [i["label"] for i in plain_data(out)["instances"]] == [label, label]


def test_a_literal_prompt_is_replaced_as_one_quoted_line():
    out = apply_ops(FLOW, [Op("set", ("prompt",), "two\nlines")])
    assert out.startswith('prompt: "two\\nlines"\ninstances:') and plain_data(out)["prompt"] == "two\nlines"


def test_the_first_key_of_an_item_can_be_deleted():
    out = apply_ops(BLOCK, [Op("delete", ("instances", 0, "image"))])
    assert "  - box: [0, 0, 100, 100]  # a box\n    label: 'dog'\n" in out


def test_an_empty_instance_list_becomes_a_block_list():
    out = apply_ops(new_scene_text(), [Op("append", ("instances",), {"image": "a.png", "box": [0, 0, 9, 9]})])
    assert out.endswith("instances:\n  - image: a.png\n    box: [0, 0, 9, 9]\n")
    assert yaml.safe_load(out)["instances"] == [{"image": "a.png", "box": [0, 0, 9, 9]}]


@pytest.mark.parametrize("doc, op, words", [
    ("a: [1\n", Op("set", ("a",), 2), "does not parse"),
    ("x: &v [1, 2]\ny: *v\n", Op("set", ("y", 0), 5), "alias"),
    ("a: 1\n", Op("remove", ("a", 0)), "no such"),
    ("a: 1\n", Op("set", ("b", "c"), 1), "no such field"),
    ("a: [1]\n", Op("set", ("a", 3), 1), "no such"),
])
def test_edits_that_cannot_apply_leave_a_clear_error(doc, op, words):
    with pytest.raises(EditError, match=words):
        apply_ops(doc, [op])
