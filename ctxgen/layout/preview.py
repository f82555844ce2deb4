"""A human-readable preview of the composition: layout image, boxes, layers, token grid, reference token masks."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ctxgen.core.pictures import BG, FG, font, instance_colour, to_uint8
from ctxgen.core.units import TOKEN
from ctxgen.layout.compose import Composition, PreparedRef, layout_to_pil
from ctxgen.scene.model import Scene

GAP = 12  # px between panels
HEAD = 28  # px of the header line above the panels


def _tag(inst_index: int, label: str | None, plan: Composition, z: int | None) -> str:
    """Box caption: label (or #i), layer position in plan.order (0 = bottom) and explicit z."""
    name = label or f"#{inst_index}"
    if not plan.order:
        return f"{name} (user layout)"
    layer = f"layer {plan.order.index(inst_index)}" if inst_index in plan.order else "no layer"
    return f"{name} | {layer}" + (f" | z={z}" if z is not None else "")


def _grid(draw: ImageDraw.ImageDraw, x0: int, y0: int, w: int, h: int, step: float, rgba: tuple) -> None:
    """Faint grid lines every `step` px inside the rectangle (x0, y0, w, h)."""
    for k in range(1, int(round(w / step))):
        x = x0 + int(round(k * step))
        draw.line([(x, y0), (x, y0 + h - 1)], fill=rgba)
    for k in range(1, int(round(h / step))):
        y = y0 + int(round(k * step))
        draw.line([(x0, y), (x0 + w - 1, y)], fill=rgba)


def _label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, tint: tuple, face,
           limit: tuple[int, int]) -> None:
    """A filled caption chip at xy (kept inside the limit (W, H)), text in white on the instance colour."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    tw, th = right - left + 8, bottom - top + 6
    x = min(max(0, xy[0]), max(0, limit[0] - tw))
    y = min(max(0, xy[1]), max(0, limit[1] - th))
    draw.rectangle([x, y, x + tw, y + th], fill=(*tint, 225))
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
        text = _tag(inst.index, inst.label, plan, inst.z)
        _label(draw, (box[0], box[1] + width), text, tint, face, (W, H))
    return Image.alpha_composite(base, over).convert("RGB")


def _token_overlay(mask: np.ndarray, size: tuple[int, int], cell: float, colour: tuple) -> Image.Image:
    """RGBA overlay: faint token grid, foreground cells tinted, the foreground region's outline drawn."""
    over = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(over)
    if cell >= 8:
        _grid(draw, 0, 0, size[0], size[1], cell, (255, 255, 255, 40))
    padded = np.pad(mask, 1)  # (th + 2, tw + 2) bool
    edges = {  # cell side -> True where the neighbour across that side is background
        "top": mask & ~padded[:-2, 1:-1], "bottom": mask & ~padded[2:, 1:-1],
        "left": mask & ~padded[1:-1, :-2], "right": mask & ~padded[1:-1, 2:],
    }

    def px(k: int) -> int:
        return int(round(k * cell))

    for r, c in np.argwhere(mask):
        draw.rectangle([px(c), px(r), px(c + 1) - 1, px(r + 1) - 1], fill=(*colour, 70))
    line = (*colour, 255)
    width = max(1, int(cell // 6))
    for r, c in np.argwhere(edges["top"]):
        draw.line([(px(c), px(r)), (px(c + 1), px(r))], fill=line, width=width)
    for r, c in np.argwhere(edges["bottom"]):
        draw.line([(px(c), px(r + 1)), (px(c + 1), px(r + 1))], fill=line, width=width)
    for r, c in np.argwhere(edges["left"]):
        draw.line([(px(c), px(r)), (px(c), px(r + 1))], fill=line, width=width)
    for r, c in np.argwhere(edges["right"]):
        draw.line([(px(c + 1), px(r)), (px(c + 1), px(r + 1))], fill=line, width=width)
    return over


def _ref_panel(ref: PreparedRef, colour: tuple, width: int, max_h: int) -> Image.Image:
    """A reference scaled to fit (width, max_h), its foreground token cells (R7) tinted and outlined."""
    w, h = ref.size
    scale = min(width / w, max_h / h)
    out_w, out_h = max(1, int(w * scale)), max(1, int(h * scale))
    u8 = to_uint8(ref.pixels)  # (h, w, 3)
    img = Image.fromarray(u8, "RGB").resize((out_w, out_h), Image.Resampling.LANCZOS).convert("RGBA")
    over = _token_overlay(ref.token_mask, (out_w, out_h), TOKEN * scale, colour)
    return Image.alpha_composite(img, over).convert("RGB")


def _reference_column(plan: Composition, scene: Scene, width: int, height: int) -> Image.Image:
    """The column of references with captions (index, label, token grid, foreground token count)."""
    face = font(13)
    cap_h = 20
    n = max(1, len(plan.refs))
    max_h = max(96, (height - GAP * (n - 1)) // n - cap_h)
    panels = []
    for ref, inst in zip(plan.refs, scene.instances):
        tint = instance_colour(inst.index)
        th, tw = ref.grid
        caption = f"{inst.label or f'#{inst.index}'}  {tw}x{th} tok, {int(ref.token_mask.sum())} fg"
        panels.append((_ref_panel(ref, tint, width, max_h), caption, tint))
    total_h = sum(p.height + cap_h for p, _, _ in panels) + GAP * (len(panels) - 1)
    col = Image.new("RGB", (width, max(height, total_h)), BG)
    draw = ImageDraw.Draw(col)
    y = 0
    for panel, caption, colour in panels:
        draw.rectangle([0, y + 3, 10, y + 13], fill=colour)
        draw.text((16, y + 2), caption, font=face, fill=FG)
        col.paste(panel, ((width - panel.width) // 2, y + cap_h))
        y += panel.height + cap_h + GAP
    return col


def render_preview(plan: Composition, scene: Scene) -> Image.Image:
    """Composite (R10/R12) with boxes, captions, layer order (R11) and token grid; references with m_n (R7)."""
    W, H = plan.size
    composite = _composite_panel(plan, scene)
    col_w = max(160, min(360, W // 3))
    column = _reference_column(plan, scene, col_w, H)
    out = Image.new("RGB", (W + col_w + 3 * GAP, max(H, column.height) + 2 * GAP + HEAD), BG)
    order = " ".join(map(str, plan.order)) if plan.order else "user layout"
    header = f"{scene.stem}  {W}x{H}  base {plan.base}  tokens {W // TOKEN}x{H // TOKEN}  layers bottom->top: {order}"
    ImageDraw.Draw(out).text((GAP, GAP), header, font=font(15), fill=FG)
    out.paste(composite, (GAP, GAP + HEAD))
    out.paste(column, (W + 2 * GAP, GAP + HEAD))
    return out
