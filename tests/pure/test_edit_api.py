"""The editor's JSON API through FastAPI's test client: load, edit, validate, preview, layers, save, tokens, hosts."""

from __future__ import annotations

import io

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from ctxgen.core.errors import SceneError  # noqa: E402
from ctxgen.edit.app import create_app  # noqa: E402
from ctxgen.scene.images import check_references  # noqa: E402
from ctxgen.scene.model import load_scene  # noqa: E402
from tests.browser.edit_scenes import SCENE, make_scene_folder  # noqa: E402

BASE = "http://127.0.0.1:8765"


@pytest.fixture
def scene_file(tmp_path):
    return make_scene_folder(tmp_path / "work")


def client_for(path, **options) -> tuple[TestClient, dict]:
    app = create_app(path, model="tiny", out=path.parent / "outputs", **options)
    client = TestClient(app, base_url=BASE)
    return client, {"X-Ctxgen-Token": app.state.editor.config.token}


@pytest.fixture
def api(scene_file):
    client, headers = client_for(scene_file)
    with client:
        yield client, headers


def edit(client, headers, version, *ops):
    r = client.post("/api/scene/edit", json={"version": version, "ops": [dict(zip(("op", "path", "value"), o))
                                                                            for o in ops]}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def validate_lines(path) -> list[str]:
    """What `ctxgen validate` prints for a file (its error lines)."""
    try:
        check_references(load_scene(path))
    except SceneError as exc:
        return exc.issues
    return []


def test_load_shows_the_file_as_it_is(api, scene_file):
    client, _ = api
    s = client.get("/api/scene").json()
    assert s["text"] == SCENE and s["valid"] and not s["dirty"] and s["exists"] and s["issues"] == []
    assert s["data"]["instances"][1]["label"] == "kite" and s["data"]["size"] == [256, 256]
    assert client.get("/api/info").json()["model"] == "tiny"


def test_an_edit_changes_only_its_field_and_saves_with_a_backup(api, scene_file):
    client, headers = api
    s = edit(client, headers, 0, ("set", ["instances", 1, "box"], [96, 32, 224, 144]),
             ("set", ["instances", 0, "label"], "red ball"), ("set", ["instances", 0, "z"], 3))
    assert s["version"] == 1 and s["dirty"] and s["valid"]
    expected = (SCENE.replace("box: [128, 16, 240, 128]", "box: [96, 32, 224, 144]")
                .replace("label: ball\n", "label: red ball\n    z: 3\n"))
    assert s["text"] == expected
    saved = client.post("/api/scene/save", json={"version": 1}, headers=headers).json()
    assert scene_file.read_text() == expected, "comments, quotes and blank lines kept byte for byte"
    assert scene_file.with_name("scene.yaml.bak").read_text() == SCENE
    assert saved["backup"].endswith("scene.yaml.bak") and not saved["scene"]["dirty"]
    assert validate_lines(scene_file) == []


def test_problems_are_the_lines_ctxgen_validate_prints(api, scene_file):
    client, headers = api
    s = edit(client, headers, 0, ("set", ["size"], [264, 256]), ("set", ["instances", 0, "box"], [90, 10, 20, 50]))
    assert not s["valid"]
    same = scene_file.with_name("same.yaml")
    same.write_text(s["text"])
    want = [line.replace(str(same), str(scene_file)) for line in validate_lines(same)]
    assert [i["text"] for i in s["issues"]] == want and len(want) == 2
    size = next(i for i in s["issues"] if i["path"] == "size")
    assert size["message"] == "width 264 is not a multiple of 16; use 256 or 272" and size["line"] == 3
    assert any(i["path"] == "instances[0].box" and "swap them" in i["message"] for i in s["issues"])
    p = client.get("/api/preview").json()
    assert not p["ok"] and p["problems"] == want


def test_a_missing_image_is_reported_like_validate(api, scene_file):
    client, headers = api
    s = edit(client, headers, 0, ("set", ["instances", 0, "image"], "refs/nope.png"))
    assert [i["path"] for i in s["issues"]] == ["instances[0].image"]
    assert "image file not found" in s["issues"][0]["message"]


def test_preview_gives_the_composite_and_layer_order(api):
    client, headers = api
    p = client.get("/api/preview").json()
    assert p["ok"] and p["size"] == [256, 256] and sorted(p["order"]) == [0, 1]
    assert p["boxes"] == [[16, 144, 112, 240], [128, 16, 240, 128]] and p["token_boxes"][0] == [1, 9, 7, 15]
    assert [r["index"] for r in p["refs"]] == [0, 1] and all(r["fg"] > 0 for r in p["refs"])
    layout = Image.open(io.BytesIO(client.get(p["layout_url"]).content))
    assert layout.size == (256, 256) and layout.format == "JPEG"
    assert layout.getpixel((64, 192))[0] > 150, "the red ball is drawn in its box"
    for name in ("preview.png", "masks.png"):
        r = client.get(p["layout_url"].replace("layout.jpg", name))
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).format == "PNG"
    edit(client, headers, 0, ("set", ["instances", 0, "box"], [32, 144, 128, 240]))
    assert client.get(p["layout_url"]).status_code == 200, "earlier previews stay until evicted"
    assert client.get("/api/preview/0123456789abcdef01234567/layout.jpg").status_code == 404


def test_layer_moves_write_z_and_give_the_asked_order(api):
    client, headers = api
    edit(client, headers, 0, ("set", ["instances", 1, "box"], [32, 112, 144, 224]))  # overlaps the ball
    order = client.get("/api/preview").json()["order"]
    bottom = order[0]
    s = client.post("/api/scene/layer", json={"version": 1, "instance": order[0], "action": "up"}, headers=headers)
    assert s.status_code == 200, s.text
    s = s.json()
    assert "z:" in s["text"] and s["valid"]
    assert client.get("/api/preview").json()["order"] == order[::-1]
    again = client.post("/api/scene/layer", json={"version": s["version"], "instance": bottom, "action": "front"},
                        headers=headers).json()
    assert again["version"] == s["version"], "already on top: nothing written"
    back = client.post("/api/scene/layer", json={"version": s["version"], "instance": bottom, "action": "back"},
                       headers=headers).json()
    assert back["version"] == s["version"] + 1 and client.get("/api/preview").json()["order"] == order


def test_invalid_yaml_opens_and_can_be_fixed_in_the_text(tmp_path):
    path = make_scene_folder(tmp_path, SCENE.replace("size: [256, 256]", "size: [256, 256"))
    client, headers = client_for(path)
    s = client.get("/api/scene").json()
    assert not s["valid"] and s["data"] is None and s["issues"][0]["path"] == "yaml"
    assert s["issues"][0]["text"] == validate_lines(path)[0]
    r = client.post("/api/scene/edit", json={"version": 0, "ops": [{"op": "set", "path": ["seed"], "value": 1}]},
                    headers=headers)
    assert r.status_code == 400 and "does not parse" in r.json()["detail"]
    s = client.put("/api/scene/text", json={"version": 0, "text": SCENE}, headers=headers).json()
    assert s["valid"] and s["version"] == 1


def test_a_new_file_starts_from_a_template_and_is_created_on_save(tmp_path):
    make_scene_folder(tmp_path)
    path = tmp_path / "new.yaml"
    client, headers = client_for(path)
    s = client.get("/api/scene").json()
    assert not s["exists"] and s["dirty"] and not s["valid"]
    s = edit(client, headers, 0, ("append", ["instances"], {"image": "refs/ball.png", "box": [0, 0, 128, 128]}))
    assert s["valid"] and "  - image: refs/ball.png\n    box: [0, 0, 128, 128]\n" in s["text"]
    saved = client.post("/api/scene/save", json={"version": 1}, headers=headers).json()
    assert saved["backup"] is None and path.read_text() == s["text"] and validate_lines(path) == []


def test_save_refuses_to_overwrite_a_file_changed_on_disk(api, scene_file):
    client, headers = api
    edit(client, headers, 0, ("set", ["steps"], 3))
    scene_file.write_text(SCENE + "# changed elsewhere\n")
    r = client.post("/api/scene/save", json={"version": 1}, headers=headers)
    assert r.status_code == 409 and "changed on disk" in r.json()["detail"]
    assert scene_file.read_text().endswith("# changed elsewhere\n")
    assert client.post("/api/scene/save", json={"version": 1, "overwrite": True}, headers=headers).status_code == 200
    assert "steps: 3\n" in scene_file.read_text()
    assert scene_file.with_name("scene.yaml.bak").read_text().endswith("# changed elsewhere\n")


def test_stale_versions_conflict(api):
    client, headers = api
    edit(client, headers, 0, ("set", ["steps"], 3))
    r = client.post("/api/scene/edit", json={"version": 0, "ops": [{"op": "set", "path": ["steps"], "value": 4}]},
                    headers=headers)
    assert r.status_code == 409 and r.json()["scene"]["version"] == 1


def test_mutations_need_the_session_token(api):
    client, headers = api
    body = {"version": 0, "ops": [{"op": "set", "path": ["steps"], "value": 4}]}
    for bad in ({}, {"X-Ctxgen-Token": "wrong"}):
        assert client.post("/api/scene/edit", json=body, headers=bad).status_code == 403
        assert client.post("/api/scene/save", json={"version": 0}, headers=bad).status_code == 403
        assert client.post("/api/render", headers=bad).status_code == 403
        assert client.post("/api/files?name=a.png", content=b"x", headers=bad).status_code == 403
    assert client.get("/api/scene").json()["version"] == 0
    r = client.get("/api/scene", headers={"Host": "evil.example:8765"})
    assert r.status_code == 403, "a page on another host name (DNS rebinding) is refused"
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]


def test_render_waits_for_a_valid_scene(api):
    client, headers = api
    edit(client, headers, 0, ("set", ["size"], [264, 256]))
    r = client.post("/api/render", headers=headers)
    assert r.status_code == 409 and "problem" in r.json()["detail"]
