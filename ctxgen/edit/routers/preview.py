"""/api/preview: the layout preview of the current text, its images, and the references with their masks."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException, Request, Response
from PIL import Image

from ctxgen.core.fsio import png_bytes
from ctxgen.core.pictures import instance_colour
from ctxgen.edit.schemas import PreviewOut

router = APIRouter(tags=["preview"])
KINDS = {"layout.jpg": None, "preview.png": "preview", "masks.png": "masks"}
REF_SIDE = 384  # longest side of a reference picture in the page


@router.get("/preview")
def make_preview(request: Request) -> PreviewOut:
    """Compute (or find cached) the preview of the current version."""
    return request.app.state.editor.preview()


@router.get("/preview/{key}/{name}")
def preview_image(key: str, name: str, request: Request) -> Response:
    """`layout.jpg` (the composite), `preview.png` (as `ctxgen layout --preview`), `masks.png` (CLA/ICA map)."""
    ed = request.app.state.editor
    found = ed.previews.get(key)
    if found is None or name not in KINDS:
        raise HTTPException(404, "no such preview (it was replaced by a newer one); ask for a new preview")
    if KINDS[name] is None:
        return Response(found.layout_jpeg, media_type="image/jpeg")
    return Response(ed.previews.picture(found, KINDS[name]), media_type="image/png")


@router.get("/instances/{index}/reference.png")
def reference(index: int, request: Request) -> Response:
    """The instance's reference (at most 384 px), its mask tinted in the instance colour when known."""
    from ctxgen.scene.images import ImageError, read_image_rgb

    ed = request.app.state.editor
    scene = ed.session.state().scene
    if scene is None or not 0 <= index < len(scene.instances):
        raise HTTPException(404, "no such instance in a valid scene")
    ref = ed.previews.reference(scene, index)
    try:
        rgb = ref.rgb if ref is not None else read_image_rgb(scene.instances[index].image)  # (h, w, 3)
    except ImageError as exc:
        raise HTTPException(400, str(exc)) from None
    img = Image.fromarray(rgb)
    if ref is not None:
        fg = ref.mask >= 128  # (h, w)
        tint = np.asarray(instance_colour(index), np.float32)
        mixed = np.where(fg[..., None], rgb * 0.6 + tint * 0.4, rgb * 0.45)  # (h, w, 3)
        img = Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8))
    img.thumbnail((REF_SIDE, REF_SIDE))
    return Response(png_bytes(img), media_type="image/png",
                    headers={"X-Image-Size": f"{rgb.shape[1]}x{rgb.shape[0]}"})
