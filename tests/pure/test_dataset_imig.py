"""`import-imig` on a hand-made tree in the published layout (D2), and on every kind of broken input: each is a
counted, logged skip with its reason, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxgen.core.errors import UserError
from ctxgen.dataset.imig import import_items, plan_imig
from ctxgen.dataset.synthetic import synthetic_record, write_imig_tree
from tests.dataset_helpers import edit_json, jpeg, mask_png, write_fake_imig


def run(root: Path, decode: bool = False):
    items, subset_log = plan_imig(root)
    records, log = import_items(tuple(items), {"decode": decode})
    return {r.id: r for r in records}, subset_log + log


def reasons(log, level=None) -> list[tuple]:
    return sorted((e["level"], e["reason"], e.get("id")) for e in log if level is None or e["level"] == level)


@pytest.fixture
def tree(tmp_path) -> Path:
    return write_fake_imig(tmp_path / "IMIG-100K")


def test_the_published_layout_becomes_records(tree):
    records, log = run(tree)
    assert sorted(records) == ["basic-000000", "basic-000003", "composite-000007"] and log == []
    rec = records["basic-000000"]
    assert rec.subset == "basic" and rec.prompt == "a cat next to a dog"
    assert rec.target.data == (tree / "imig-basic/data/000000.jpg").read_bytes()  # bytes as they came
    cat, dog = rec.instances
    assert cat.box == (10.0, 20.0, 110.0, 140.0) and cat.phrase == "a cat" and cat.kind == "object"
    assert cat.image.name == "000000_0.jpg" and cat.mask.name == "000000_0_mask.png"
    assert cat.enhanced_image.data == (tree / "imig-basic/kontext_data/000000_0.jpg").read_bytes()
    assert cat.enhanced_mask.name == "000000_0_mask.png" and cat.valid_box == (4.0, 6.0, 60.0, 70.0)
    assert dog.enhanced_image is None and dog.valid_box is None  # no repaint on disk for this one
    assert rec.metadata["imig"]["nouns"] == ["cat", "dog"] and rec.metadata["imig"]["source"] == "imig-basic"
    comp = records["composite-000007"]
    man, hat = comp.instances
    assert man.kind == "face" and man.box == (20.0, 30.0, 120.0, 140.0)  # no detection box: the face box
    assert man.face_image.name == "000007_0_aligned_face.png" and man.image.name == "000007_0.jpg"
    assert hat.kind == "object" and hat.image.name == "000007_2.jpg" and hat.box == (150.0, 10.0, 240.0, 90.0)
    assert comp.metadata["imig"]["instances"][1]["bbox"]["score"] == 0.91


def test_broken_files_are_skipped_with_their_reason(tree):
    b = tree / "imig-basic"
    (b / "masked_instance_data/000000_1_mask.png").write_bytes(mask_png(130, 170, empty=True))
    (b / "masked_kontext_data/000000_0_mask.png").write_bytes(mask_png(10, 10))  # wrong size: repaint left out
    (b / "data/000003.jpg").unlink()
    (tree / "imig-composite/reference_masks/000007_2_mask.png").unlink()
    records, log = run(tree)
    assert [len(r.instances) for r in records.values()] == [1, 1]
    assert records["basic-000000"].instances[0].enhanced_image is None
    assert reasons(log) == [("note", "mask-size", "basic-000000"), ("skip-instance", "empty-mask", "basic-000000"),
                            ("skip-instance", "missing-file", "composite-000007"),
                            ("skip-record", "missing-file", "basic-000003")]
    missing = next(e for e in log if e["id"] == "basic-000003")
    assert missing["file"] == "imig-basic/data/000003.jpg" and missing["message"].endswith("missing imig-basic/data/000003.jpg")


def test_boxes_outside_the_image_are_clipped_or_skipped(tree):
    def change(entries):
        entries[0]["reference_images"][0]["bbox"] = [-10, 20, 110, 300]  # partly outside: clipped
        entries[0]["reference_images"][1]["bbox"] = [300, 300, 400, 400]  # entirely outside: skipped
        entries[1]["reference_images"][0]["bbox"] = [30, 40, 31, 41]  # 1 px: under one token at the canvas

    edit_json(tree / "imig-basic/filtered_prompts.json", change)
    records, log = run(tree)
    assert records["basic-000000"].instances[0].box == (0.0, 20.0, 110.0, 256.0)
    assert "basic-000003" not in records
    assert reasons(log) == [("note", "box-clipped", "basic-000000"), ("skip-instance", "box-outside", "basic-000000"),
                            ("skip-instance", "box-too-small", "basic-000003"),
                            ("skip-record", "no-instances", "basic-000003")]


def test_json_that_is_not_the_imig_layout(tree):
    (tree / "imig-composite/filtered_prompts.json").write_text('{"not": "a list"}')
    edit_json(tree / "imig-basic/filtered_prompts.json",
              lambda e: e.extend([{"prompt": "no index"}, {"index": 5, "prompt": "x", "reference_images": 3},
                                  "text", {"index": 6, "prompt": "", "reference_images": []}]))
    records, log = run(tree)
    assert sorted(records) == ["basic-000000", "basic-000003"]
    assert reasons(log) == [("skip-record", "not-imig", "basic-000005"), ("skip-record", "not-imig", "basic-000006"),
                            ("skip-record", "not-imig", "basic-entry2"), ("skip-record", "not-imig", "basic-entry4"),
                            ("skip-subset", "not-imig", None)]
    (tree / "imig-basic/filtered_prompts.json").write_text("[{")
    items, subset_log = plan_imig(tree)
    assert items == [] and [e["reason"] for e in subset_log] == ["not-imig", "not-imig"]
    assert "not valid JSON" in subset_log[0]["message"]
    with pytest.raises(UserError, match="holds none of imig-basic/"):
        plan_imig(tree / "imig-basic")


def test_pixel_cap_and_truncated_images(tree, monkeypatch):
    whole = (tree / "imig-basic/data/000003.jpg").read_bytes()
    (tree / "imig-basic/data/000003.jpg").write_bytes(whole[: len(whole) // 2])
    records, log = run(tree)
    assert "basic-000003" in records and log == []  # decode-free: the header is intact
    records, log = run(tree, decode=True)
    assert "basic-000003" not in records and reasons(log) == [("skip-record", "unreadable", "basic-000003")]
    monkeypatch.setenv("CTXGEN_MAX_PIXELS", str(300 * 230))
    (tree / "imig-basic/data/000003.jpg").write_bytes(jpeg(320, 240))
    records, log = run(tree)
    assert sorted(records) == ["basic-000000", "composite-000007"]
    assert reasons(log) == [("skip-record", "too-large", "basic-000003")]
    assert "above the limit of 69,000" in log[0]["message"]


def test_the_synthetic_imig_tree_imports_to_the_synthetic_records(tmp_path):
    write_imig_tree(tmp_path / "t", 6)
    records, log = run(tmp_path / "t")
    assert log == [] and len(records) == 6
    for i in range(6):
        want = synthetic_record(i)
        got = records[f"{want.subset}-{i:06d}"]
        assert got.target == want.target and got.prompt == want.prompt
        assert [g.box for g in got.instances] == [w.box for w in want.instances]
        assert [g.kind for g in got.instances] == [w.kind for w in want.instances]
        assert [g.valid_box for g in got.instances] == [w.valid_box for w in want.instances]
    manifest = json.loads((tmp_path / "t/imig-basic/filtered_prompts.json").read_text())
    assert manifest[0]["reference_images"][0].keys() == {"index", "bbox", "phrase", "valid_bbox"}
