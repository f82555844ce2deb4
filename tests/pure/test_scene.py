"""Scene loading (R1, R8): golden `file:line:col field: message` lines, box scaling and clipping, seeds, paths."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from ctxgen.core.errors import SceneError
from ctxgen.scene.model import load_scene, scene_json_schema

HEAD = 'prompt: "p"\ninstances:\n  - image: refs/cut.png\n'
BOX = "    box: [1, 2, 30, 40]\n"
ONE = 'prompt: "p"\ninstances:\n  - image: refs/cut.png\n' + BOX
SCENE_KEYS = "prompt, size, canvas, seed, steps, guidance, layout, fit, ica, instances"
INSTANCE_KEYS = "image, mask, box, box_norm, label, phrase, fit, z, point, prompt_box"


def issues_of(write, text: str) -> list[str]:
    name = write(text)
    with pytest.raises(SceneError) as info:
        load_scene(name)
    return info.value.issues


GOLDEN = {
    "malformed_yaml": (
        HEAD + "    box: [1, 2, 3\n",
        ["s.yaml:5:1 yaml: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 4)"]),
    "duplicate_keys": (
        'prompt: "p"\nprompt: "q"\ninstances:\n  - image: refs/cut.png\n' + BOX + BOX,
        ["s.yaml:2:1 prompt: duplicate key (first at line 1); keep one",
         "s.yaml:6:5 instances[0].box: duplicate key (first at line 5); keep one"]),
    "unknown_keys": (
        'prompt: "p"\ncolour: red\ninstances:\n  - image: refs/cut.png\n' + BOX + "    lable: ball\n",
        [f"s.yaml:2:1 colour: unknown key 'colour'; allowed keys: {SCENE_KEYS}",
         f"s.yaml:6:5 instances[0].lable: unknown key 'lable'; did you mean 'label'? allowed keys: {INSTANCE_KEYS}"]),
    "wrong_types": (
        "prompt: 12\nsteps: many\nguidance: [1]\nseed: 1.5\ninstances:\n  - image: refs/cut.png\n"
        '    box: "1, 2, 30, 40"\n    fit: stretch\n    z: top\n',
        ["s.yaml:1:9 prompt: Input should be a valid string; got 12",
         "s.yaml:2:8 steps: Input should be a valid integer; got 'many'",
         "s.yaml:3:11 guidance: Input should be a valid number; got a list",
         "s.yaml:4:7 seed: should be an integer >= 0 or a list of them (one image each); got 1.5",
         "s.yaml:7:10 instances[0].box: Input should be a valid list; got '1, 2, 30, 40'",
         "s.yaml:8:10 instances[0].fit: Input should be 'instance', 'distort', 'image' or 'contain'; got 'stretch'",
         "s.yaml:9:8 instances[0].z: Input should be a valid integer; got 'top'"]),
    "missing_prompt": (
        "instances:\n  - image: refs/cut.png\n" + BOX,
        ["s.yaml:1:1 prompt: required key is missing"]),
    "empty_prompt": (
        'prompt: "  "\ninstances:\n  - image: refs/cut.png\n' + BOX,
        ["s.yaml:1:9 prompt: must not be empty; describe the whole picture"]),
    "nan_box": (
        HEAD + "    box: [10, .nan, 30, .inf]\n",
        ["s.yaml:4:15 instances[0].box[1]: Input should be a finite number; got .nan",
         "s.yaml:4:25 instances[0].box[3]: Input should be a finite number; got .inf"]),
    "inverted_box": (
        HEAD + "    box: [50, 10, 10, 40]\n",
        ["s.yaml:4:10 instances[0].box: x2 (10) must be greater than x1 (50); swap them"]),
    "zero_area_box": (
        HEAD + "    box: [50, 10, 50.5, 10]\n",
        ["s.yaml:4:10 instances[0].box: y2 equals y1 (10): the box has zero height"]),
    "box_outside": (
        HEAD + "    box: [800, 10, 900, 40]\n",
        ["s.yaml:4:10 instances[0].box: box [800, 10, 900, 40] lies entirely outside the canvas (768x768); "
         "move it inside"]),
    "box_wrong_length": (
        HEAD + "    box: [1, 2, 30]\n",
        ["s.yaml:4:10 instances[0].box: needs [x1, y1, x2, y2]; got 3"]),
    "no_box": (
        HEAD,
        ["s.yaml:3:5 instances[0]: needs `box: [x1, y1, x2, y2]` (canvas pixels) or `box_norm:` (fractions 0..1)"]),
    "box_and_box_norm": (
        ONE + "    box_norm: [0, 0, 1, 1]\n",
        ["s.yaml:5:5 instances[0].box_norm: give either `box` or `box_norm`, not both"]),
    "size_not_multiple_of_16": (
        'prompt: "p"\nsize: [770, 512]\ninstances:\n  - image: refs/cut.png\n' + BOX,
        ["s.yaml:2:7 size: width 770 is not a multiple of 16; use 768 or 784"]),
    "size_too_large": (
        'prompt: "p"\nsize: [512, 4096]\ninstances:\n  - image: refs/cut.png\n' + BOX,
        ["s.yaml:2:7 size: height 4096 is outside 256..2048"]),
    "zero_instances": (
        'prompt: "p"\ninstances: []\n',
        ["s.yaml:2:12 instances: needs 1 to 16 instances; got 0"]),
    "seventeen_instances": (
        'prompt: "p"\ninstances:\n' + "  - {image: refs/cut.png, box: [1, 2, 30, 40]}\n" * 17,
        ["s.yaml:3:3 instances: needs 1 to 16 instances; got 17"]),
    "point_without_mask_auto": (
        ONE + "    point: [3, 4]\n    prompt_box: [1, 1, 5, 5]\n",
        ["s.yaml:5:12 instances[0].point: only used with `mask: auto` (a SAM 2 prompt); remove it or set `mask: auto`",
         "s.yaml:6:17 instances[0].prompt_box: only used with `mask: auto` (a SAM 2 prompt); remove it or set "
         "`mask: auto`"]),
    "seed_list_items": (
        'prompt: "p"\nseed: [1, -2, 2.5]\ninstances:\n  - image: refs/cut.png\n' + BOX,
        ["s.yaml:2:11 seed[1]: Input should be greater than or equal to 0; got -2",
         "s.yaml:2:15 seed[2]: Input should be a valid integer; got 2.5"]),
    "not_a_mapping": (
        "- a\n- b\n",
        ["s.yaml:1:1 scene: a scene is a mapping with `prompt:`, `instances:` and optional settings; got a list"]),
    "empty_file": (
        "# only a comment\n",
        ["s.yaml:1:1 scene: a scene is a mapping with `prompt:`, `instances:` and optional settings; "
         "the file is empty"]),
    "tagged_values": (
        "prompt: !!int abc\nsteps: !!bool maybe\ninstances:\n  - image: refs/cut.png\n" + BOX,
        ["s.yaml:1:9 prompt: cannot read 'abc' as !!int", "s.yaml:2:8 steps: cannot read 'maybe' as !!bool"]),
    "two_documents": (
        "prompt: p\n---\nprompt: q\n",
        ["s.yaml:2:1 yaml: but found another document (expected a single document in the stream at line 1)"]),
    "control_character": (
        'prompt: "a\x07"\n',
        ["s.yaml:1:11 yaml: character U+0007 is not allowed in YAML; remove it"]),
    "escape_above_unicode": (
        'prompt: "\\U00110000"\n',
        ["s.yaml:1:10 yaml: a \\U escape in a quoted string is above U+10FFFF, the last Unicode character; fix or "
         "remove it"]),
    "lone_surrogate": (
        'prompt: "a\\ud800"\ninstances:\n  - image: refs/cut.png\n' + BOX,
        ["s.yaml:1:9 prompt: contains an escaped lone surrogate (\\ud800-\\udfff); remove it"]),
    "alias_loop": (
        "a: &a [*a]\n",
        ["s.yaml:1:4 yaml: the document nests deeper than 32 levels or holds more than 10,000 values (an alias "
         "loop?); write the scene out plainly"]),
    "odd_keys_quoted_on_one_line": (
        'prompt: p\n"bad key\\n": 1\n[a]: 1\ninstances:\n  - image: refs/cut.png\n' + BOX,
        [f"s.yaml:2:1 [\"bad key\\n\"]: unknown key 'bad key\\n'; allowed keys: {SCENE_KEYS}",
         "s.yaml:3:1 scene: keys must be plain names"]),
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_errors(write, name: str) -> None:
    text, expected = GOLDEN[name]
    assert issues_of(write, text) == expected


def test_missing_image_and_directory(write, workdir: Path) -> None:
    (workdir / "refs" / "dir.png").mkdir()
    text = 'prompt: p\nlayout: nope.png\ninstances:\n  - image: refs/nope.png\n' + BOX
    text += "  - image: refs/dir.png\n    mask: refs/gone.png\n" + BOX
    root = workdir.resolve()
    assert issues_of(write, text) == [
        f"s.yaml:2:9 layout: layout image not found: {root}/nope.png; paths are relative to the scene file",
        f"s.yaml:4:12 instances[0].image: image file not found: {root}/refs/nope.png; paths are relative to the "
        "scene file",
        f"s.yaml:6:12 instances[1].image: image file {root}/refs/dir.png is a directory; give the path of a file",
        f"s.yaml:7:11 instances[1].mask: mask file not found: {root}/refs/gone.png; paths are relative to the "
        "scene file",
    ]


def test_scene_file_problems(workdir: Path) -> None:
    (workdir / "latin1.yaml").write_bytes(b'prompt: "ok"\nlabel: "caf\xe9"\n')
    cases = {"latin1.yaml": "latin1.yaml:2:12 file: not valid UTF-8 (byte 0xe9); save the scene file as UTF-8",
             "nope.yaml": "nope.yaml:1:1 file: scene file not found: nope.yaml",
             "refs": "refs:1:1 file: scene file refs is a directory; give the path of a file"}
    for name, expected in cases.items():
        with pytest.raises(SceneError) as info:
            load_scene(name)
        assert info.value.issues == [expected]


def test_all_problems_reported_at_once(write) -> None:
    text = ("prompt: p\nsize: [500, 512]\nsteps: 0\ninstances:\n  - image: refs/nope.png\n    box: [5, 5, 1, 9]\n"
            "  - image: refs/cut.png\n    box: [2000, 0, 2100, 10]\n    z: 1.5\n")
    found = issues_of(write, text)
    assert [line.split(" ")[0] for line in found] == ["s.yaml:2:7", "s.yaml:3:8", "s.yaml:5:12", "s.yaml:6:10",
                                                      "s.yaml:9:8"]
    assert "x2 (1) must be greater than x1 (5)" in found[3]  # per-box problems do not need a valid size


def test_partly_outside_box_is_clipped_with_warning(write) -> None:
    scene = load_scene(write(HEAD + "    box: [700, -20, 900, 40]\n"))
    assert scene.instances[0].box == (700.0, 0.0, 768.0, 40.0)
    assert scene.warnings == ("s.yaml:4:10 instances[0].box: box [700, -20, 900, 40] extends past the canvas "
                              "(768x768); clipped to [700, 0, 768, 40]",)


def test_canvas_scaling_and_box_norm(write) -> None:
    text = ('prompt: p\nsize: [512, 256]\ncanvas: [1024, 512]\ninstances:\n  - image: refs/cut.png\n'
            '    box: [100, 50, 300, 250]\n  - image: refs/cut.png\n    box_norm: [0.25, 0.5, 0.75, 1.0]\n'
            '  - image: refs/cut.png\n    box_norm: [-0.5, 0, 0.5, 1.5]\n')
    scene = load_scene(write(text))
    assert [inst.box for inst in scene.instances] == [(50.0, 25.0, 150.0, 125.0), (128.0, 128.0, 384.0, 256.0),
                                                      (0.0, 0.0, 256.0, 256.0)]
    assert scene.warnings == ("s.yaml:10:15 instances[2].box_norm: box_norm [-0.5, 0, 0.5, 1.5] extends past the "
                              "canvas (0..1); clipped to [0, 0, 0.5, 1]",)


def test_canvas_box_outside_is_reported_in_canvas_units(write) -> None:
    text = 'prompt: p\ncanvas: [100, 100]\ninstances:\n  - image: refs/cut.png\n    box: [100, 0, 120, 50]\n'
    assert issues_of(write, text) == ["s.yaml:5:10 instances[0].box: box [100, 0, 120, 50] lies entirely outside "
                                      "the canvas (100x100); move it inside"]


def test_box_that_rounds_to_zero_width_after_scaling(write) -> None:
    text = ('prompt: p\nsize: [1232, 1232]\ncanvas: [2485, 2485]\ninstances:\n  - image: refs/cut.png\n'
            '    box: [889.752696117046, 0, 889.7526961170461, 10]\n')
    assert issues_of(write, text) == ["s.yaml:6:10 instances[0].box: box [889.753, 0, 889.753, 10] is too small to "
                                      "survive scaling to 1232x1232; enlarge it"]


def test_seed_list_and_single_seed(write) -> None:
    assert load_scene(write(ONE + "seed: [3, 5]\n")).seeds == (3, 5)
    scene = load_scene(write(ONE + "seed: 42\n"))
    assert (scene.seeds, scene.seed_random) == ((42,), False)


def test_random_seed_is_drawn_and_recorded(write, monkeypatch: pytest.MonkeyPatch) -> None:
    import ctxgen.scene.model

    drawn = []
    monkeypatch.setattr(ctxgen.scene.model.secrets, "randbelow", lambda n: drawn.append(n) or 123456789)
    scene = load_scene(write(ONE))
    assert (scene.seeds, scene.seed_random, drawn) == ((123456789,), True, [2**32])


def test_fields_resolve(write, workdir: Path) -> None:
    text = ('prompt: "a photo of a cat"\nsize: [1024, 512]\nsteps: 4\nguidance: 2\nfit: distort\nica: paper\n'
            'layout: refs/cut.png\ninstances:\n'
            '  - image: refs/cut.png\n    box: [0, 0, 64, 64]\n    label: cat\n    phrase: a red cat\n    z: 3\n'
            '  - image: ./refs/photo.png\n    mask: refs/mask.png\n    box: [0, 0, 64, 64]\n    fit: image\n'
            '  - image: refs/photo.png\n    mask: auto\n    point: [5, 6]\n    prompt_box: [1, 2, 30, 40]\n'
            '    box: [0, 0, 64, 64]\n')
    name = write(text)
    scene = load_scene(name)
    root = workdir.resolve()
    assert scene.source == root / "s.yaml" and scene.display_path == "s.yaml" and scene.stem == "s"
    assert scene.digest == hashlib.sha256((workdir / name).read_bytes()).hexdigest()
    assert (scene.prompt, scene.size, scene.steps, scene.guidance, scene.ica) == (
        "a photo of a cat", (1024, 512), 4, 2.0, "paper")
    assert scene.layout == root / "refs" / "cut.png"
    a, b, c = scene.instances
    assert (a.index, a.image, a.mask_mode, a.mask, a.fit, a.label, a.phrase, a.z, a.line) == (
        0, root / "refs/cut.png", "alpha", None, "distort", "cat", "a red cat", 3, 9)
    assert (b.image, b.mask_mode, b.mask, b.fit, b.line) == (
        root / "refs/photo.png", "file", root / "refs/mask.png", "image", 14)
    assert (c.mask_mode, c.mask, c.point, c.prompt_box, c.fit, c.line) == (
        "auto", None, (5.0, 6.0), (1.0, 2.0, 30.0, 40.0), "distort", 18)


def test_defaults(write) -> None:
    scene = load_scene(write(ONE))
    assert (scene.size, scene.steps, scene.guidance, scene.ica, scene.layout, scene.warnings) == (
        (768, 768), 28, 3.5, "official", None, ())
    assert scene.instances[0].fit == "instance" and scene.instances[0].mask_mode == "alpha"


def test_scene_issue_points_at_the_field_or_its_parent(write) -> None:
    scene = load_scene(write('prompt: p\ninstances:\n  - image: refs/cut.png\n' + BOX
                             + "  - image: refs/photo.png\n    mask: refs/mask.png\n" + BOX))
    assert scene.issue("instances[1].mask", "bad") == "s.yaml:6:11 instances[1].mask: bad"
    assert scene.issue("instances[0].mask", "bad") == "s.yaml:3:5 instances[0].mask: bad"  # not in the file
    assert scene.issue("layout", "bad") == "s.yaml:1:1 layout: bad"


def test_json_schema() -> None:
    schema = scene_json_schema()
    assert schema["title"] == "ctxgen scene" and schema["additionalProperties"] is False
    assert set(schema["required"]) == {"prompt", "instances"}
    assert list(schema["properties"]) == SCENE_KEYS.split(", ")
    instance = schema["$defs"]["InstanceDoc"]
    assert instance["additionalProperties"] is False and instance["required"] == ["image"]
    assert instance["oneOf"] == [{"required": ["box"]}, {"required": ["box_norm"]}]
    seed = schema["properties"]["seed"]["anyOf"]
    assert {"type": "integer", "minimum": 0, "exclusiveMaximum": 2**32} in seed


def test_import_is_light() -> None:
    code = ("import sys, ctxgen.scene; "
            "print(sorted(m for m in ('torch', 'pydantic', 'yaml', 'PIL', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
