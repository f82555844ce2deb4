"""/api/scene: read the scene, edit fields, replace the text, reorder layers, save, reload."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ctxgen.core.pictures import PALETTE
from ctxgen.edit.schemas import EditIn, InfoOut, LayerIn, SavedOut, SaveIn, SceneOut, TextIn, VersionIn
from ctxgen.edit.security import require_token
from ctxgen.edit.yamledit import Op

router = APIRouter(tags=["scene"])
guarded = [Depends(require_token)]


def _editor(request: Request):
    return request.app.state.editor


@router.get("/info")
def info(request: Request) -> InfoOut:
    ed = _editor(request)
    return InfoOut(file=ed.session.shown, folder=str(ed.session.folder), model=ed.renderer.model_name(),
                   sam_model=ed.config.sam_model, out_dir=str(ed.out_dir), max_upload=ed.config.max_upload,
                   palette=["#%02x%02x%02x" % c for c in PALETTE])


@router.get("/scene")
def get_scene(request: Request) -> SceneOut:
    return _editor(request).scene_out()


@router.post("/scene/edit", dependencies=guarded)
def edit(body: EditIn, request: Request) -> SceneOut:
    ed = _editor(request)
    ops = [Op(o.op, tuple(o.path), o.value) for o in body.ops]
    return ed.scene_out(ed.session.edit(ops, body.version))


@router.put("/scene/text", dependencies=guarded)
def put_text(body: TextIn, request: Request) -> SceneOut:
    ed = _editor(request)
    return ed.scene_out(ed.session.set_text(body.text, body.version))


@router.post("/scene/layer", dependencies=guarded)
def layer(body: LayerIn, request: Request) -> SceneOut:
    return _editor(request).layer(body.version, body.instance, body.action)


@router.post("/scene/save", dependencies=guarded)
def save(body: SaveIn, request: Request) -> SavedOut:
    ed = _editor(request)
    path, backup = ed.session.save(body.version, body.overwrite)
    return SavedOut(saved=str(path), backup=str(backup) if backup else None, scene=ed.scene_out())


@router.post("/scene/reload", dependencies=guarded)
def reload(body: VersionIn, request: Request) -> SceneOut:
    ed = _editor(request)
    return ed.scene_out(ed.session.reload())
