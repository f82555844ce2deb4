"""The editor's folder: uploads (size cap, real images only, no path escapes), listing and thumbnails."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from ctxgen.edit.app import create_app  # noqa: E402
from tests.browser.edit_scenes import blob, make_scene_folder, png_bytes  # noqa: E402


@pytest.fixture
def api(tmp_path):
    path = make_scene_folder(tmp_path / "work")
    (tmp_path / "secret.png").write_bytes(png_bytes(blob(8, 8, (1, 2, 3))))
    app = create_app(path, model="tiny", out=path.parent / "outputs", max_upload=64 * 1024)
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        yield client, {"X-Ctxgen-Token": app.state.editor.config.token}, path.parent


def upload(client, headers, name, data):
    return client.post("/api/files", params={"name": name}, content=data, headers=headers)


def test_an_uploaded_image_lands_in_refs_and_becomes_an_instance(api):
    client, headers, folder = api
    data = png_bytes(blob(40, 30, (200, 200, 0)))
    r = upload(client, headers, "sun.png", data)
    assert r.status_code == 200, r.text
    assert r.json() == {"path": "refs/sun.png", "size": [40, 30], "alpha": True, "format": "PNG"}
    assert (folder / "refs" / "sun.png").read_bytes() == data
    assert upload(client, headers, "sun.png", data).json()["path"] == "refs/sun.png", "the same bytes are reused"
    other = png_bytes(blob(40, 30, (0, 200, 200)))
    assert upload(client, headers, "sun.png", other).json()["path"] == "refs/sun-2.png", "never overwrites"
    s = client.post("/api/scene/edit", headers=headers, json={"version": 0, "ops": [
        {"op": "append", "path": ["instances"], "value": {"image": "refs/sun.png", "box": [0, 0, 64, 64]}}]}).json()
    assert s["valid"] and client.get("/api/preview").json()["ok"]


def test_a_jpeg_named_png_is_stored_under_its_real_format(api):
    client, headers, folder = api
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (9, 9, 9)).save(buf, format="JPEG")
    r = upload(client, headers, "photo2.png", buf.getvalue()).json()
    assert r["path"] == "refs/photo2.jpg" and r["alpha"] is False and r["format"] == "JPEG"


@pytest.mark.parametrize("name, data, words", [
    ("big.png", png_bytes(Image.effect_noise((200, 200), 90).convert("RGB")), "upload limit"),
    ("notes.png", b"just some text, not an image", "not a readable image"),
    ("empty.png", b"", "empty"),
    ("script.svg", b"<svg/>", "image extension"),
    ("../escape.png", None, "name the file"),
    ("sub/escape.png", None, "name the file"),
    (".hidden.png", None, "name the file"),
    ("..", None, "name the file"),
])
def test_uploads_are_refused_with_one_line(api, name, data, words):
    client, headers, folder = api
    before = sorted(p.name for p in folder.rglob("*"))
    r = upload(client, headers, name, data if data is not None else png_bytes(blob(8, 8, (1, 1, 1))))
    assert r.status_code == 400 and words in r.json()["detail"], r.text
    assert sorted(p.name for p in folder.rglob("*")) == before and not (folder.parent / "escape.png").exists()


def test_a_refs_link_out_of_the_folder_is_not_followed(api, tmp_path):
    client, headers, folder = api
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for p in (folder / "refs").iterdir():
        p.unlink()
    (folder / "refs").rmdir()
    os.symlink(outside, folder / "refs")
    r = upload(client, headers, "x.png", png_bytes(blob(8, 8, (1, 1, 1))))
    assert r.status_code == 403 and "outside the scene's folder" in r.json()["detail"]
    assert list(outside.iterdir()) == []


def test_listing_and_thumbnails_stay_inside_the_folder(api):
    client, headers, folder = api
    (folder / "outputs" / "scene").mkdir(parents=True)
    (folder / "outputs" / "scene" / "seed-1.png").write_bytes(png_bytes(blob(8, 8, (1, 1, 1))))
    listed = [f["path"] for f in client.get("/api/files").json()]
    assert listed == ["refs/ball.png", "refs/kite.png", "refs/photo.jpg"], "renders are not offered as references"
    thumb = Image.open(io.BytesIO(client.get("/api/files/refs/kite.png").content))
    assert thumb.format == "PNG" and max(thumb.size) <= 160
    for bad in ("../secret.png", "refs/../../secret.png", "%2e%2e/secret.png", "/etc/passwd", "scene.yaml"):
        r = client.get(f"/api/files/{bad}")
        assert r.status_code in (403, 404), (bad, r.status_code)
        assert r.headers.get("content-type") != "image/png"
