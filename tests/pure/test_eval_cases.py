"""Benchmark annotation files: the published formats parse; a file off the schema is one line naming file and field."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ctxgen.core.errors import UsageError, UserError
from ctxgen.eval.cases import load_cocomig, load_lamic, load_layoutsam
from ctxgen.vision.roles import check_value, resolve_specs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import eval_helpers as h  # noqa: E402


def test_the_three_formats_parse(tmp_path):
    mig = load_cocomig([h.write_cocomig(tmp_path / "m")[0]])
    assert [(i.colour, i.noun) for i in mig[0].instances] == [("red", "dog"), ("blue", "cat")]
    lamic = load_lamic([h.write_lamic(tmp_path / "l")[0]])
    assert [r.is_face for r in lamic[0].refs] == [True, False] and lamic[1].refs[3].mask_path == "obj_1_3_mask.png"
    sam = load_layoutsam([h.write_layoutsam(tmp_path / "s")[0]])
    assert sam[1].regions[1].bbox == (0.5, 0.5, 0.9, 0.9) and sam[0].regions[0].detail == "a small red dog"


@pytest.mark.parametrize("bad, where", [
    ({"0": {"caption": "x", "segment": [{"bbox": [0, 0, 1, 1], "label": "a purple dog"}]}}, "[\'0\'].segment[0].label"),
    ({"0": {"caption": "x", "segment": [{"bbox": [0.5, 0, 0.1, 1], "label": "a red dog"}]}}, "segment[0].bbox"),
    ({"0": {"segment": []}}, "['0']: required key 'caption'"),
])
def test_cocomig_schema_errors_name_file_and_field(tmp_path, bad, where):
    p = tmp_path / "mig.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(UserError) as exc:
        load_cocomig([p])
    assert str(exc.value).startswith(str(p)) and where in str(exc.value) and "\n" not in str(exc.value)


def test_lamic_and_json_errors(tmp_path):
    p = tmp_path / "l.json"
    p.write_text(json.dumps([{"index": 0, "references": [{"image_path": "a.jpg"}], "vqa_prompts": {}}]))
    with pytest.raises(UserError, match=r"\[0\]\.references\[0\]: required key 'phrase' is missing"):
        load_lamic([p])
    p.write_text("[{")
    with pytest.raises(UserError, match=r"l\.json:1:3 json:"):
        load_lamic([p])


def test_role_values_are_checked():
    with pytest.raises(UsageError, match="detektor: unknown role"):
        check_value("detektor", "x/y", "EVAL.yaml")
    with pytest.raises(UsageError, match="no reference variant"):
        check_value("embedder", "reference", "EVAL.yaml")
    specs = resolve_specs("cocomig", {"clip": "tiny-random"}, {"detector": "reference"}, "EVAL.yaml")
    assert specs == {"detector": "reference", "segmenter": "facebook/sam2.1-hiera-large", "clip": "tiny-random"}
