"""`ctxgen dataset preview`: one picture of a record as the model stages see it (R4-R19). Torch-free.

The record goes through the same stages as a scene: it is written out as a scene (export), read back with the
scene checks, its references decoded (R2), composited (R4-R12, `ctxgen.layout`), and turned into the token
sequence and CLA/ICA masks (R13-R19, `ctxgen.sequence`). The picture shows the target at the training canvas
with its boxes, every reference with its mask (and the repainted reference with its valid box, the face crop),
the layout preview `ctxgen layout --preview` draws, and the attention overlays `render` writes in its debug folder.
"""

from __future__ import annotations

import dataclasses
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ctxgen.core.pictures import BG, FG, font, instance_colour
from ctxgen.dataset.record import ImageData, Record

THUMB = 112  # px: height of a reference thumbnail
WIDTH = 1280  # px: the picture is at most this wide
GAP = 12


def prepare_record(rec: Record, size: tuple[int, int] | None = None, text_len: int = 512):
    """The record as a PreparedScene (labels fall back to phrases); `size` = the training canvas (default: auto)."""
    from ctxgen.dataset.export import export_record
    from ctxgen.dataset.scenes import parse_pack_scene
    from ctxgen.sequence.prepare import prepare_scene

    with tempfile.TemporaryDirectory(prefix="ctxgen-preview-") as tmp:
        path = export_record(rec, Path(tmp), size=size, seed=0)
        scene = parse_pack_scene(path.read_bytes(), path)
        scene = dataclasses.replace(scene, instances=tuple(
            dataclasses.replace(inst, label=inst.label or inst.phrase) for inst in scene.instances))
        return prepare_scene(scene, text_len)


def _fit(im: Image.Image, w: int | None = None, h: int | None = None, most: float = 4.0) -> Image.Image:
    scale = min((w or 10**9) / im.width, (h or 10**9) / im.height, most)
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)


def _title(im: Image.Image, text: str) -> Image.Image:
    face = font(14)
    width = int(ImageDraw.Draw(im).textlength(text, font=face)) + 8
    out = Image.new("RGB", (max(im.width, width), im.height + 22), BG)
    ImageDraw.Draw(out).text((4, 3), text, fill=FG, font=face)
    out.paste(im, (0, 22))
    return out


def _row(images: list[Image.Image], gap: int = GAP) -> Image.Image:
    out = Image.new("RGB", (sum(i.width for i in images) + gap * (len(images) - 1), max(i.height for i in images)), BG)
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width + gap
    return out


def _column(images: list[Image.Image], width: int) -> Image.Image:
    images = [_fit(i, w=width) if i.width > width else i for i in images]
    out = Image.new("RGB", (width, sum(i.height for i in images) + GAP * (len(images) + 1)), BG)
    y = GAP
    for im in images:
        out.paste(im, (GAP, y))
        y += im.height + GAP
    return out


def _target_panel(sp, target: np.ndarray) -> Image.Image:
    """The target at the canvas, every box in its colour with its label."""
    im = Image.fromarray(target).convert("RGB")
    draw = ImageDraw.Draw(im)
    face = font(max(12, min(im.size) // 28))
    for inst, box in zip(sp.scene.instances, sp.composition.boxes):
        colour = instance_colour(inst.index)
        draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=colour, width=max(2, im.width // 256))
        text = f"{inst.index}: {inst.label or ''}".strip()
        width = draw.textlength(text, font=face)
        xy = (max(0, min(box[0] + 3, im.width - width - 4)), box[1] + 3)  # the caption stays on the picture
        left, top, right, bottom = draw.textbbox(xy, text, font=face)
        draw.rectangle([left - 2, top - 2, right + 2, bottom + 2], fill=colour)
        draw.text(xy, text, fill=(255, 255, 255), font=face)
    return im


def _cutout(img: ImageData, mask: ImageData | None) -> Image.Image:
    """The reference over a checkerboard where its mask (or alpha) is below 128."""
    pixels = img.decode()  # (h, w, 3|4)
    alpha = mask.decode_mask() if mask is not None else pixels[..., 3]  # (h, w)
    h, w = alpha.shape
    yy, xx = np.mgrid[0:h, 0:w]
    checker = np.where(((yy // 8 + xx // 8) % 2)[:, :, None] == 0, 200, 150).astype(np.uint8)  # (h, w, 1)
    out = np.where((alpha >= 128)[:, :, None], pixels[..., :3], checker)
    return _fit(Image.fromarray(out.astype(np.uint8)), h=THUMB)


def _reference_rows(rec: Record) -> Image.Image:
    """Per instance: the reference with its mask, the mask, the repainted reference (valid box) and the face crop."""
    rows = []
    for i, inst in enumerate(rec.instances):
        cells = [_title(_cutout(inst.image, inst.mask), f"{i}: reference ({inst.kind})"),
                 _title(_fit(Image.fromarray(inst.mask.decode_mask() if inst.mask is not None
                                             else inst.image.decode()[..., 3]), h=THUMB), "mask")]
        if inst.enhanced_image is not None:
            enh = _cutout(inst.enhanced_image, inst.enhanced_mask)
            if inst.valid_box is not None:
                s = enh.height / inst.enhanced_image.size()[1]
                ImageDraw.Draw(enh).rectangle([v * s for v in inst.valid_box], outline=instance_colour(i), width=2)
            cells.append(_title(enh, "repainted + valid_box"))
        if inst.face_image is not None:
            cells.append(_title(_fit(Image.fromarray(inst.face_image.decode()[..., :3]), h=THUMB), "face crop"))
        rows.append(_row(cells))
    return _column(rows, max(r.width for r in rows) + 2 * GAP)


def render_record_preview(rec: Record, where: str = "", size: tuple[int, int] | None = None,
                          text_len: int = 512) -> Image.Image:
    """The whole preview picture of one record."""
    from ctxgen.layout.preview import render_preview
    from ctxgen.outputs.overlays import mask_maps, render_overlays

    sp = prepare_record(rec, size, text_len)
    W, H = sp.scene.size
    target = np.asarray(Image.fromarray(rec.target.decode()[..., :3]).resize((W, H), Image.Resampling.LANCZOS))
    top = [_title(_target_panel(sp, target), f"target at the {W}x{H} training canvas, boxes and labels")]
    if rec.rejected is not None:
        rejected = _fit(Image.fromarray(rec.rejected.decode()[..., :3]), h=H)
        top.append(_title(rejected, "rejected (preference pair)"))
    overlays = render_overlays(sp, target)
    half = (WIDTH - 3 * GAP) // 2
    attention = [_fit(overlays[f"instance-{n}"], w=half, most=1.5) for n in range(len(rec.instances))]
    attention_rows = [_row(attention[k:k + 2]) for k in range(0, len(attention), 2)]
    tw, th = rec.target.size()
    header = (f"{rec.id}  [{rec.subset}]  {where}  target {tw}x{th} -> canvas {W}x{H}  {len(rec.instances)} "
              f"instances  seed {rec.seed if rec.seed is not None else '-'}")
    prompt = "\n".join(textwrap.wrap(f"prompt: {rec.prompt}", 150)[:4])
    text = Image.new("RGB", (WIDTH, 26 + 18 * (prompt.count("\n") + 1)), BG)
    ImageDraw.Draw(text).text((0, 2), header, fill=FG, font=font(16))
    ImageDraw.Draw(text).multiline_text((0, 24), prompt, fill=FG, font=font(13))
    sections = [text, _row(top), _title(_reference_rows(rec), "references and masks"),
                _title(render_preview(sp.composition, sp.scene), "layout stage (ctxgen layout --preview)"),
                _title(_column(attention_rows, WIDTH - 2 * GAP),
                       "main tokens attending to each reference under ICA (render debug)"),
                _title(mask_maps(sp), "attention masks")]
    return _column(sections, WIDTH)
