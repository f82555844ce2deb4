"""CONSTRUCT.yaml: the D3/D4 defaults, every problem at once as `file:line:col field: message`, the examples."""

from __future__ import annotations

import pytest

from ctxgen.core.errors import SceneError
from ctxgen.dataset.construct.config import EDITS, default_config, load_config
from tests.construct_helpers import EXAMPLES


def test_defaults_are_the_published_thresholds():
    c = default_config()
    d, r, flt, m = c.detect, c.repaint, c.filter, c.match
    assert (d.box_threshold, d.text_threshold, d.min_side, d.min_area, d.nms_iou, d.max_boxes) == \
        (0.35, 0.25, 1 / 16, 1 / 200, 0.625, 8)
    assert (c.t2i.size, c.t2i.steps, r.area, r.steps) == ([1024, 1024], 8, 1024 * 1024, 15)
    assert (flt.min_instances, c.max_instances(), flt.min_area, flt.min_fit) == (2, 5, 0.01, 0.6)
    assert (c.references.size, c.references.steps, c.compose.size, c.compose.steps, c.compose.guidance) == \
        ([768, 768], 12, [512, 512], 28, 3.5)
    assert (m.dino, m.face, m.candidate_similarity, m.face_found, m.box_overlap, m.face_overlap) == \
        (0.82, 0.65, 0.5, 0.4, 0.75, 0.5)
    assert [e["weight"] for e in r.edits] == [e["weight"] for e in EDITS] == [0.4, 0.1, 0.15, 0.15, 0.1, 0.1]
    assert c.rule() == (4, 1) and c.models.t2i_lora == "alimama-creative/FLUX.1-Turbo-Alpha"


def test_every_problem_at_once_with_its_position(tmp_path):
    path = tmp_path / "c.construct"
    path.write_text("path: basci\nprompts:\n  source: file\ndetect:\n  nms_iou: 2\n  box_treshold: 0.3\n"
                    "t2i: {size: [1000, 1024]}\nfilter: {min_instances: 3, max_instances: 2}\n", encoding="utf-8")
    with pytest.raises(SceneError) as exc:
        load_config(path)
    lines = exc.value.issues
    assert any(ln.startswith(f"{path}:1:7 path: String should match pattern") for ln in lines)
    assert any(ln.startswith(f"{path}:5:12 detect.nms_iou: Input should be less than or equal to 1") for ln in lines)
    assert any(f"{path}:6:3 detect.box_treshold: unknown key 'box_treshold'; did you mean 'box_threshold'?" in ln
               for ln in lines)
    assert len(lines) == 3  # semantics wait for a valid document


def test_semantic_problems(tmp_path):
    path = tmp_path / "c.construct"
    path.write_text("prompts:\n  source: file\nt2i: {size: [1000, 1024]}\nfilter: {min_instances: 3, "
                    "max_instances: 2}\nrepaint:\n  edits: [{prefix: Place}]\n", encoding="utf-8")
    with pytest.raises(SceneError) as exc:
        load_config(path)
    text = "\n".join(exc.value.issues)
    assert f"{path}:2:3 prompts: source: file needs file:" in text
    assert f"{path}:3:14 t2i.size[0]: 1000 must be a multiple of 16" in text
    assert "filter.max_instances: must be at least min_instances" in text
    assert f"{path}:6:11 repaint.edits[0]: an edit is" in text


def test_yaml_errors_are_located(tmp_path):
    path = tmp_path / "c.construct"
    path.write_text("path: [basic\n", encoding="utf-8")
    with pytest.raises(SceneError, match=r"c.construct:2:1 yaml:"):
        load_config(path)
    path.write_text("- a\n", encoding="utf-8")
    with pytest.raises(SceneError, match="the config is a mapping"):
        load_config(path)


def test_the_examples_load_and_are_not_scenes():
    basic = load_config(EXAMPLES / "tiny.construct")
    flex = load_config(EXAMPLES / "tiny-composite.construct")
    assert basic.stages[-1] == "filter" and flex.stages == ("prompts", "references", "compose", "match")
    assert flex.subset == "composite" and basic.resolve(basic.prompts.file).is_file()
    assert not list(EXAMPLES.glob("*.yaml")) and not list(EXAMPLES.glob("*.yml"))  # `ctxgen validate examples/`
