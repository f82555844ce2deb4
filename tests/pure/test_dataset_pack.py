"""`pack` and `export-scenes`: scene YAML with `target:` -> records with render's own checks and file:line:col
messages; records -> scenes -> records is exact (R1, R2, R8)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ctxgen.core.errors import SceneError
from ctxgen.dataset.export import export_record
from ctxgen.dataset.scenes import pack_items, parse_pack_scene, plan_pack, read_pack_scene
from ctxgen.dataset.shards import DatasetReader
from tests.dataset_helpers import jpeg, mask_png, synthetic_dir  # noqa: F401  (fixture)


@pytest.fixture
def folder(workdir: Path) -> Path:
    """The pure tests' workdir (refs/cut.png 64x48 RGBA, refs/photo.png RGB, refs/mask.png) plus target.jpg 320x240."""
    (workdir / "target.jpg").write_bytes(jpeg(320, 240))
    (workdir / "rejected.jpg").write_bytes(jpeg(320, 240, (0, 0, 0)))
    return workdir


def pack(folder: Path, text: str, name: str = "s.yaml", pixels: bool = False):
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return read_pack_scene(path.read_bytes(), path, Path(name).stem, pixels=pixels)


def issues(folder: Path, text: str) -> list[str]:
    with pytest.raises(SceneError) as info:
        pack(folder, text)
    return [line.split(" ", 1)[0].split(":", 1)[1] + " " + line.split(" ", 1)[1] for line in info.value.issues]


def test_export_then_pack_gives_the_same_records(synthetic_dir, tmp_path):
    reader = DatasetReader(synthetic_dir)
    paths = [export_record(reader.record(i), tmp_path / "scenes") for i in range(len(reader))]
    records, log = pack_items(tuple(plan_pack(paths)), {"decode": True})
    assert log == [] and records == [reader.record(i) for i in range(len(reader))]
    text = paths[0].read_text()
    assert "target: synthetic-000000/000000.jpg" in text and "canvas: [256, 192]" in text


def test_a_scene_with_a_target_becomes_a_record(folder):
    rec = pack(folder, """
        prompt: a red blob
        id: blob-1
        subset: mine
        target: target.jpg
        rejected: rejected.jpg
        seed: 7
        layout: refs/cut.png
        metadata: {source: test, n: [1, 2]}
        instances:
          - image: refs/cut.png
            box: [10, 20, 110, 120]
            label: blob
            kind: face
            loc_point: [50, 60]
          - image: refs/photo.png
            mask: refs/mask.png
            box: [-20, 100, 200, 300]
            z: 2
            enhanced_image: refs/cut.png
            valid_box: [2, 2, 60, 40]
    """)
    assert (rec.id, rec.subset, rec.seed, rec.metadata) == ("blob-1", "mine", 7, {"source": "test", "n": [1, 2]})
    assert rec.target.data == (folder / "target.jpg").read_bytes() and rec.target.name == "target.jpg"
    assert rec.layout.name == "cut.png" and rec.rejected.name == "rejected.jpg"
    a, b = rec.instances
    assert (a.box, a.kind, a.loc_point, a.mask) == ((10.0, 20.0, 110.0, 120.0), "face", (50.0, 60.0), None)
    assert b.box == (0.0, 100.0, 200.0, 240.0) and b.z == 2  # no size/canvas: target pixels, clipped (R8)
    assert b.mask.name == "mask.png" and b.enhanced_image.name == "cut.png" and b.valid_box == (2.0, 2.0, 60.0, 40.0)


def test_size_and_canvas_give_the_box_units(folder):
    body = "target: target.jpg\ninstances:\n  - image: refs/cut.png\n    box: [64, 32, 128, 128]\n"
    assert pack(folder, "prompt: p\nsize: [640, 480]\n" + body).instances[0].box == (32.0, 16.0, 64.0, 64.0)
    # canvas 160x120: y2 = 128 is clipped to 120 (R8), then everything doubles to the 320x240 target
    assert pack(folder, "prompt: p\ncanvas: [160, 120]\n" + body).instances[0].box == (128.0, 64.0, 256.0, 240.0)
    flow = "{prompt: p, target: target.jpg, instances: [{image: refs/cut.png, box: [1, 2, 30, 40], kind: face}]}"
    rec = pack(folder, flow)  # flow style: the dataset keys and their commas are blanked out
    assert rec.instances[0].kind == "face" and rec.instances[0].box == (1.0, 2.0, 30.0, 40.0)


def test_every_problem_at_once_with_line_and_column(folder):
    got = issues(folder, """
        prompt: p
        target: nope.jpg
        seed: [1, 2]
        metadata: {when: 2024-01-01}
        instances:
          - image: refs/cut.png
            box: [10, 20, 5, 40]
            kind: person
          - image: refs/photo.png
            mask: auto
            box: [1, 1, 30, 30]
            valid_box: [1, 2]
            enhanced_mask: refs/mask.png
    """)
    assert got == [
        "2:9 target: image file not found: %s; paths are relative to the scene file" % (folder / "nope.jpg"),
        "3:7 seed: a training record keeps one seed; give one",
        "4:18 metadata.when: not a JSON value (date); use text, numbers, true/false, null, lists and mappings with text keys",
        "7:10 instances[0].box: x2 (5) must be greater than x1 (10); swap them",
        "8:11 instances[0].kind: must be one of object, face; got 'person'",
        "10:11 instances[1].mask: a dataset stores its masks: `mask: auto` runs SAM at render time; save one with "
        "`ctxgen mask` and give `mask: <file>`, or use an RGBA cut-out",
        "12:16 instances[1].valid_box: needs 4 finite numbers",
        "13:20 instances[1].enhanced_mask: given without `enhanced_image`",
    ]


def test_missing_target_and_image_problems(folder):
    (folder / "empty.png").write_bytes(mask_png(20, 20, empty=True))
    got = issues(folder, """
        prompt: p
        instances:
          - image: refs/clear.png
            box: [10, 20, 50, 40]
    """)
    assert got == ["1:1 target: required key is missing: the target image of this scene"]
    got = issues(folder, """
        prompt: p
        target: target.jpg
        instances:
          - image: refs/photo.png
            mask: empty.png
            box: [10, 20, 50, 40]
          - image: refs/clear.png
            box: [10, 20, 400, 400]
    """)
    assert got[0] == "5:11 instances[0].mask: mask empty.png is 20x20 but image photo.png is 64x48; they must be the same size"
    assert got[1].startswith("7:12 instances[1].image: mask of clear.png is empty")
    assert len(got) == 2  # the box past the canvas is a warning, clipped as render clips it (R8)


def test_the_scene_seen_by_layout_keeps_its_line_numbers(folder):
    path = folder / "s.yaml"
    path.write_text("target: target.jpg\nprompt: p\ninstances:\n  - kind: face\n    image: refs/cut.png\n"
                    "    box: [1, 2, 3]\n")
    with pytest.raises(SceneError) as info:
        parse_pack_scene(path.read_bytes(), path)
    assert info.value.issues == [f"{path}:6:10 instances[0].box: needs [x1, y1, x2, y2]; got 3"]


def test_pack_items_log_failed_scenes_and_keep_the_rest(folder):
    (folder / "good.yaml").write_text("prompt: p\ntarget: target.jpg\ninstances:\n  - image: refs/cut.png\n"
                                      "    box: [1, 2, 30, 40]\n")
    (folder / "bad.yaml").write_text("prompt: p\ninstances:\n  - image: refs/cut.png\n    box: [1, 2, 30, 40]\n")
    items = plan_pack([folder / "good.yaml", folder / "bad.yaml", folder / "missing.yaml"])
    assert [i[1] for i in items] == ["good", "bad", "missing"]
    records, log = pack_items(tuple(items), {})
    assert [r.id for r in records] == ["good"]
    assert [(e["reason"], Path(e["source"]).name) for e in log] == [("invalid-scene", "bad.yaml"),
                                                                    ("invalid-scene", "missing.yaml")]
    assert "scene file not found" in log[1]["message"]
