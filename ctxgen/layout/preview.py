"""A human-readable preview of the composition: layout image, boxes, layers, token grid, reference token masks.

Layers are named one way everywhere: by label (or `#index` when unlabelled), counted bottom to top from 1.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ctxgen.core.pictures import BG, FG, font, instance_colour, line_height, outline_cells, to_uint8, wrap
from ctxgen.core.units import TOKEN
from ctxgen.layout.compose import Composition, PreparedRef, layout_to_pil
from ctxgen.scene.model import Scene

GAP = 12  # px between panels
DIM = (170, 174, 182)  # secondary text


def instance_name(label: str | None, index: int) -> str:
    """How pictures name an instance: its label, or #index when it has none."""
    return label or f"#{index}"


def layer_caption(plan: Composition, scene: Scene, index: int) -> str:
    """Box caption: name, layer position counted bottom to top from 1 (R11), explicit z."""
    inst = scene.instances[index]
    name = instance_name(inst.label, index)
    if not plan.order:
        return f"{name} · user layout"
    if not plan.layer_masks[index].any():
        return f"{name} · not on the canvas"
    z = f" · z={inst.z}" if inst.z is not None else ""
    return f"{name} · layer {plan.order.index(index) + 1} of {len(plan.order)}{z}"


def header_lines(plan: Composition, scene: Scene, face, width: int) -> list[tuple[str, tuple]]:
    """The header as (line, colour) pairs wrapped to `width` px: size and tokens, layer order, what base means."""
    W, H = plan.size
    names = [instance_name(scene.instances[i].label, i) for i in plan.order]
    layers = ("layers, bottom to top: " + ", ".join(names)) if plan.order else \
        "layout: the scene's own image (R12), so no layer order"
    base = (f"references: resized to about {plan.base}x{plan.base} px (R4, set by the canvas size); "
            "outlined: their foreground tokens (R7)")
    parts = [(f"{scene.stem} · {W}x{H} px · {W // TOKEN}x{H // TOKEN} tokens of 16 px (the grid)", FG),
             (layers, FG), (base, DIM)]
    return [(line, colour) for text, colour in parts for line in wrap(text, face, width)]


def _grid(draw: ImageDraw.ImageDraw, x0: int, y0: int, w: int, h: int, step: float, rgba: tuple) -> None:
    """Faint grid lines every `step` px inside the rectangle (x0, y0, w, h)."""
    for k in range(1, int(round(w / step))):
        x = x0 + int(round(k * step))
        draw.line([(x, y0), (x, y0 + h - 1)], fill=rgba)
    for k in range(1, int(round(h / step))):
        y = y0 + int(round(k * step))
        draw.line([(x0, y), (x0 + w - 1, y)], fill=rgba)


def _chip(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], text: str, tint: tuple, face,
          limit: tuple[int, int]) -> None:
    """A caption chip on the box's top edge: above the box where there is room, else just inside it."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    tw, th = right - left + 8, bottom - top + 6
    x = min(max(0, box[0]), max(0, limit[0] - tw))
    y = box[1] - th if box[1] >= th else box[1]
    y = min(max(0, y), max(0, limit[1] - th))
    draw.rectangle([x, y, x + tw, y + th], fill=(*tint, 230))
    draw.text((x + 4 - left, y + 3 - top), text, font=face, fill=(255, 255, 255, 255))


def _composite_panel(plan: Composition, scene: Scene) -> Image.Image:
    """The layout at W x H with the token grid, every box in its colour and its caption."""
    W, H = plan.size
    base = layout_to_pil(plan).convert("RGBA")
    over = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    draw = ImageDraw.Draw(over)
    _grid(draw, 0, 0, W, H, TOKEN, (255, 255, 255, 28))
    width = max(2, W // 256)
    face = font(max(12, min(W, H) // 40))
    for inst, box in zip(scene.instances, plan.boxes):
        tint = instance_colour(inst.index)
        draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=(*tint, 255), width=width)
    for inst, box in zip(scene.instances, plan.boxes):  # captions after all boxes, so no box line crosses one
        _chip(draw, box, layer_caption(plan, scene, inst.index), instance_colour(inst.index), face, (W, H))
    return Image.alpha_composite(base, over).convert("RGB")


def reference_thumbnail(ref: PreparedRef, colour: tuple, width: int, max_h: int) -> Image.Image:
    """A reference in its true colours (as the model gets it, R6) scaled into (width, max_h), its foreground
    token cells (R7) outlined, not tinted."""
    w, h = ref.size
    scale = min(width / w, max_h / h)
    out_w, out_h = max(1, int(w * scale)), max(1, int(h * scale))
    img = Image.fromarray(to_uint8(ref.pixels), "RGB").resize((out_w, out_h), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(img)
    cell = TOKEN * scale
    outline_cells(draw, ref.token_mask, cell, colour, width=2 if cell >= 5 else 1)
    return img


def _reference_column(plan: Composition, scene: Scene, width: int, height: int) -> Image.Image:
    """The column of references, each under its caption: name and span, then token grid and foreground count."""
    face = font(max(13, min(16, plan.size[0] // 64)))
    n = max(1, len(plan.refs))
    entries = []
    for ref, inst in zip(plan.refs, scene.instances):
        th, tw = ref.grid
        lines = wrap(f"{instance_name(inst.label, inst.index)} · ref{inst.index}", face, width - 16)
        detail = wrap(f"{tw}x{th} tokens, {int(ref.token_mask.sum())} outlined", face, width - 16)
        entries.append(([(t, FG) for t in lines] + [(t, DIM) for t in detail], instance_colour(inst.index), ref))
    cap_h = max(len(lines) for lines, _, _ in entries) * line_height(face) + 4
    max_h = max(96, (height - GAP * (n - 1)) // n - cap_h)
    thumbs = [reference_thumbnail(ref, colour, width, max_h) for _, colour, ref in entries]
    total_h = sum(t.height + cap_h for t in thumbs) + GAP * (len(thumbs) - 1)
    col = Image.new("RGB", (width, max(height, total_h)), BG)
    draw = ImageDraw.Draw(col)
    y = 0
    swatch = line_height(face) - 6
    for (lines, colour, _), thumb in zip(entries, thumbs):
        draw.rectangle([0, y + 4, swatch, y + 4 + swatch], fill=colour)
        for k, (line, tone) in enumerate(lines):
            draw.text((swatch + 6, y + 1 + k * line_height(face)), line, font=face, fill=tone)
        col.paste(thumb, ((width - thumb.width) // 2, y + cap_h))
        y += thumb.height + cap_h + GAP
    return col


def _header_face(plan: Composition):
    return font(max(14, min(20, plan.size[0] // 50)))


def layout_origin(plan: Composition, scene: Scene) -> tuple[int, int]:
    """(x, y) of the composite panel's top-left corner inside the preview (below the wrapped header)."""
    face = _header_face(plan)
    lines = header_lines(plan, scene, face, _total_width(plan) - 2 * GAP)
    return GAP, GAP + len(lines) * line_height(face) + GAP // 2


def _column_width(plan: Composition) -> int:
    return max(192, min(360, plan.size[0] // 3))


def _total_width(plan: Composition) -> int:
    return plan.size[0] + _column_width(plan) + 3 * GAP


def render_preview(plan: Composition, scene: Scene) -> Image.Image:
    """Composite (R10/R12) with boxes, captions, layer order (R11) and token grid; references with m_n (R7)."""
    W, H = plan.size
    face = _header_face(plan)
    ox, oy = layout_origin(plan, scene)
    column = _reference_column(plan, scene, _column_width(plan), H)
    out = Image.new("RGB", (_total_width(plan), oy + max(H, column.height) + GAP), BG)
    draw = ImageDraw.Draw(out)
    for k, (line, colour) in enumerate(header_lines(plan, scene, face, out.width - 2 * GAP)):
        draw.text((GAP, GAP + k * line_height(face)), line, font=face, fill=colour)
    out.paste(_composite_panel(plan, scene), (ox, oy))
    out.paste(column, (ox + W + GAP, oy))
    return out
