"""Rendering and SAM from the editor on tiny models: progress as server-sent events, outputs written the usual way
(reproducible), history, visible cancellation, `mask: auto` through the tiny random SAM."""

from __future__ import annotations

import json

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from ctxgen.batch.reproduce import reproduce  # noqa: E402
from ctxgen.core.options import RenderOptions  # noqa: E402
from ctxgen.edit.app import create_app  # noqa: E402
from ctxgen.outputs.metadata import read_metadata  # noqa: E402
from tests.browser.edit_scenes import make_scene_folder  # noqa: E402


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One server (one tiny model, loaded by the first render) shared by this module's tests, in test order."""
    path = make_scene_folder(tmp_path_factory.mktemp("edit") / "work")
    app = create_app(path, model="tiny", out=path.parent / "outputs", device="cpu", sam_model="tiny-random",
                     render=RenderOptions(text_len=16))
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        yield client, {"X-Ctxgen-Token": app.state.editor.config.token}, path


def follow(client, job_id: str) -> list[dict]:
    """Every event of a job, read from its server-sent event stream until the job ends."""
    events = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def test_render_streams_progress_and_writes_reproducible_outputs(api):
    client, headers, path = api
    edit = client.post("/api/scene/edit", headers=headers, json={"version": 0, "ops": [
        {"op": "set", "path": ["instances", 0, "box"], "value": [32, 128, 128, 224]}]}).json()
    assert edit["dirty"], "the render below is of unsaved text"
    job = client.post("/api/render", headers=headers).json()
    events = follow(client, job["id"])
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "done", events[-1]
    steps = [e["step"] for e in events if e["type"] == "progress" and "step" in e]
    assert steps == [1, 2]
    (record,) = [e for e in events if e["type"] == "record"]
    assert record["status"] == "ok" and record["seed"] == 7
    png = path.parent / "outputs" / "scene" / "seed-7.png"
    meta = read_metadata(png)
    assert meta["seed"] == 7 and "[32, 128, 128, 224]" in meta["scene_yaml"]
    assert not list(path.parent.glob(".scene.edit-*.yaml")), "the snapshot of unsaved text is removed"
    again = reproduce(png, path.parent / "again")
    assert again["identical"], again
    entries = client.get("/api/renders").json()
    assert [e["seed"] for e in entries] == [7] and "masks" in entries[0]["overlays"]
    image = client.get(f"/api/renders/{entries[0]['id']}/seed-7.png")
    assert image.status_code == 200 and Image.open(png).size == (256, 256)
    assert client.get(f"/api/renders/{entries[0]['id']}/seed-7.debug/masks.png").status_code == 200
    assert client.get(f"/api/renders/{entries[0]['id']}/../../scene.yaml").status_code in (400, 404)


def test_a_cancelled_render_says_so_and_writes_nothing(api):
    client, headers, path = api
    state = client.get("/api/scene").json()
    client.post("/api/scene/edit", headers=headers, json={"version": state["version"], "ops": [
        {"op": "set", "path": ["steps"], "value": 50}, {"op": "set", "path": ["seed"], "value": 8}]})
    job = client.post("/api/render", headers=headers).json()
    assert client.post("/api/render", headers=headers).status_code == 409, "one render at a time"
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and '"step": 2' in line:
                assert client.post(f"/api/jobs/{job['id']}/cancel", headers=headers).status_code == 200
            if line.startswith("event: cancelled"):
                break
    final = client.get(f"/api/jobs/{job['id']}").json()
    assert final["state"] == "cancelled" and "cancelled" in final["error"]
    assert final["progress"]["step"] < 50
    assert not (path.parent / "outputs" / "scene" / "seed-8.png").exists()
    assert not list((path.parent / "outputs" / "scene").glob(".*.part"))


def test_mask_auto_runs_sam_as_a_job_then_previews(api):
    client, headers, path = api
    state = client.get("/api/scene").json()
    s = client.post("/api/scene/edit", headers=headers, json={"version": state["version"], "ops": [
        {"op": "set", "path": ["instances", 1, "image"], "value": "refs/photo.jpg"},
        {"op": "set", "path": ["instances", 1, "mask"], "value": "auto"},
        {"op": "set", "path": ["instances", 1, "point"], "value": [36, 30]}]}).json()
    assert s["valid"], s["issues"]
    p = client.get("/api/preview").json()
    assert not p["ok"] and p["needs_masks"] == [1]
    job = client.post("/api/masks", headers=headers).json()
    events = follow(client, job["id"])
    assert events[-1]["type"] == "done" and events[-1]["result"]["masks"][0]["index"] == 1
    p = client.get("/api/preview").json()
    assert p["ok"], p
    ref = client.get("/api/instances/1/reference.png")
    assert ref.status_code == 200 and ref.headers["x-image-size"] == "72x60"
