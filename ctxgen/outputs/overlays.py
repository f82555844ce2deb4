"""Debug attention-mask overlays: which main tokens draw on each reference, and maps of the CLA/ICA masks.

Instances are named as in the layout preview: label (or `#index`), with the span `ref<n>` they own.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ctxgen.core.pictures import BG, FG, font, instance_colour, line_height, outline_cells, text_width, wrap
from ctxgen.core.units import TOKEN
from ctxgen.layout.compose import layout_to_pil
from ctxgen.layout.preview import instance_name, reference_thumbnail
from ctxgen.sequence.masks import MASK_KINDS, ClassMask
from ctxgen.sequence.prepare import PreparedScene
from ctxgen.sequence.tokens import span

MAP_SIZE = 512
PAD = 8
DIM = (170, 174, 182)
SPAN_LINE = (220, 60, 60)
KIND_TITLES = {"cla": ("CLA · layout-only attention", "in the double blocks and the last half of the single blocks"),
               "ica": ("ICA · instance-context attention", "in the first half of the single blocks")}  # R15, R16, R18


def attending_tokens(table: ClassMask, tokens, n: int) -> np.ndarray:
    """bool (Ht, Wt): main tokens whose query row may attend to any token of reference n."""
    ref = span(tokens, f"ref{n}")
    main = span(tokens, "main")
    sees = table.keys[:, ref].any(axis=1)  # (C,)
    return sees[table.row_class[main]].reshape(tokens.grid)  # (M,) -> (Ht, Wt)


def _text_block(lines: list[tuple[str, tuple]], face, width: int) -> Image.Image:
    """Lines of (text, colour) on the background, `width` px wide."""
    im = Image.new("RGB", (width, len(lines) * line_height(face) + PAD), BG)
    draw = ImageDraw.Draw(im)
    for k, (line, colour) in enumerate(lines):
        draw.text((PAD // 2, PAD // 2 + k * line_height(face)), line, font=face, fill=colour)
    return im


def _stack(parts: list[Image.Image]) -> Image.Image:
    """Images one under the other, left-aligned, on the background."""
    out = Image.new("RGB", (max(p.width for p in parts), sum(p.height for p in parts)), BG)
    y = 0
    for p in parts:
        out.paste(p, (0, y))
        y += p.height
    return out


def instance_overlay(sp: PreparedScene, output: np.ndarray, n: int) -> Image.Image:
    """The output, untinted, with the ICA-attending main tokens of reference n outlined and its box drawn;
    beside it the reference in its true colours with its foreground tokens outlined (R7, R16)."""
    colour = instance_colour(n)
    H, W = output.shape[:2]
    cells = attending_tokens(sp.masks.table("ica"), sp.tokens, n)
    left = Image.fromarray(np.ascontiguousarray(output[:, :, :3]), "RGB")
    draw = ImageDraw.Draw(left)
    box = sp.composition.boxes[n]
    draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=(255, 255, 255), width=1)
    outline_cells(draw, cells, TOKEN, colour, width=max(2, W // 256))
    ref = sp.composition.refs[n]
    right = reference_thumbnail(ref, colour, max(W // 2, min(W, 320)), H)
    body = Image.new("RGB", (W + PAD + right.width, H), BG)
    body.paste(left, (0, 0))
    body.paste(right, (W + PAD, (H - right.height) // 2))
    name = instance_name(sp.scene.instances[n].label, n)
    face = font(max(13, min(18, W // 56)))
    text = [(f"{name} · ref{n}: the main tokens that may attend to ref{n} under ICA", FG),
            ("coloured outline: those tokens on the output · white: the box · right: the reference, "
             "its foreground tokens outlined", DIM)]
    lines = [(line, tone) for t, tone in text for line in wrap(t, face, body.width - PAD)]
    return _stack([_text_block(lines, face, body.width), body])


def pooled_map(table: ClassMask, size: int = MAP_SIZE) -> np.ndarray:
    """float32 (nb, nb): the fraction of allowed pairs per block of the (S, S) mask, from its class form."""
    s = table.row_class.shape[0]
    b = -(-s // size)
    nb = -(-s // b)
    keys = np.zeros((table.keys.shape[0], nb * b), np.float32)
    keys[:, :s] = table.keys
    cols = keys.reshape(keys.shape[0], nb, b).mean(axis=2)  # (C, nb)
    counts = np.zeros((nb, keys.shape[0]), np.float32)
    np.add.at(counts, (np.arange(s) // b, table.row_class), 1.0)  # rows of each class per row block
    counts /= np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return counts @ cols  # (nb, nb)


def spread(centres: list[float], sizes: list[int], lo: int, hi: int) -> list[int]:
    """Start positions for labels of `sizes` px wanted at `centres`, in order, not overlapping, inside [lo, hi]."""
    starts: list[int] = []
    for c, size in zip(centres, sizes):
        starts.append(max(int(round(c - size / 2)), lo, starts[-1] + sizes[len(starts) - 1] + 2 if starts else lo))
    end = hi
    for k in range(len(starts) - 1, -1, -1):  # push back from the far edge when the row ran out of room
        starts[k] = max(lo, min(starts[k], end - sizes[k]))
        end = starts[k] - 2
    return starts


def span_labels(sp: PreparedScene) -> list[tuple[str, int, int]]:
    """(label, start, stop) of every span: text, main, layout, then ref<n> with the instance's name."""
    names = []
    for name in sp.tokens.span_names:
        if name.startswith("ref"):
            n = int(name[3:])
            name = f"{name} {instance_name(sp.scene.instances[n].label, n)}"
        names.append(name)
    return [(name, int(a), int(b)) for name, (a, b) in zip(names, sp.tokens.span_bounds)]


def _map_panel(sp: PreparedScene, kind: str, face, margin: int) -> Image.Image:
    """One mask as a MAP_SIZE map (rows = queries, columns = keys), span lines and labels on both axes."""
    table = sp.masks.table(kind)
    grid = np.rint(pooled_map(table) * 255).astype(np.uint8)  # (nb, nb)
    im = Image.fromarray(grid).resize((MAP_SIZE, MAP_SIZE), Image.Resampling.NEAREST).convert("RGB")
    s = table.row_class.shape[0]
    spans = span_labels(sp)
    lh = line_height(face)
    top = 2 * lh + 6  # two staggered rows of column labels
    panel = Image.new("RGB", (margin + MAP_SIZE, top + MAP_SIZE), BG)
    panel.paste(im, (margin, top))
    draw = ImageDraw.Draw(panel)
    edges = [a * MAP_SIZE / s for _, a, _ in spans[1:]]
    for pos in edges:
        draw.line([(margin + pos, top), (margin + pos, top + MAP_SIZE)], fill=SPAN_LINE)
        draw.line([(margin, top + pos), (margin + MAP_SIZE, top + pos)], fill=SPAN_LINE)
    centres = [(a + b) / 2 * MAP_SIZE / s for _, a, b in spans]
    widths = [text_width(face, name) for name, _, _ in spans]
    rows = spread(centres, [lh] * len(spans), 0, MAP_SIZE)
    for (name, _, _), c, y, w in zip(spans, centres, rows, widths):  # row labels, right-aligned in the margin
        draw.text((margin - w - 10, top + y), name, font=face, fill=FG)
        draw.line([(margin - 8, top + y + lh // 2), (margin - 1, top + c)], fill=DIM)
    for lane in (0, 1):  # column labels, alternating between two lanes so that narrow spans stay legible
        pick = [k for k in range(len(spans)) if k % 2 == lane]
        xs = spread([centres[k] for k in pick], [widths[k] for k in pick], 0, MAP_SIZE)
        for k, x in zip(pick, xs):
            y = 2 + lane * lh
            draw.text((margin + x, y), spans[k][0], font=face, fill=FG)
            draw.line([(margin + centres[k], y + lh), (margin + centres[k], top - 1)], fill=DIM)
    return panel


def mask_maps(sp: PreparedScene) -> Image.Image:
    """Both masks side by side with a legend: white = may attend, black = masked; rows are queries, columns keys."""
    face, title_face = font(12), font(14)
    margin = max(text_width(face, name) for name, _, _ in span_labels(sp)) + 16
    panels = []
    for kind in MASK_KINDS:
        panel = _map_panel(sp, kind, face, margin)
        title, where = KIND_TITLES.get(kind, (kind.upper(), ""))
        lines = [(f"{title} · {100 * sp.masks.density(kind):.1f}% of pairs allowed", FG), (where, DIM)]
        panels.append(_stack([_text_block(lines, title_face, panel.width), panel]))
    height = max(p.height for p in panels)
    row = Image.new("RGB", (sum(p.width for p in panels) + 2 * PAD, height), BG)
    for k, p in enumerate(panels):
        row.paste(p, (k * (panels[0].width + 2 * PAD), 0))
    return _stack([row, _legend(sp, row.width)])


def _legend(sp: PreparedScene, width: int) -> Image.Image:
    """Swatches (white / black / grey) and how to read the maps."""
    face = font(13)
    lh = line_height(face)
    notes = ("rows are queries (the token that looks), columns are keys (the tokens it may look at); "
             f"the {sp.masks.seq_len:,} tokens are pooled to {MAP_SIZE} px, red lines part the spans")
    lines = wrap(notes, face, width - 2 * PAD)
    im = Image.new("RGB", (width, lh * (1 + len(lines)) + 2 * PAD), BG)
    draw = ImageDraw.Draw(im)
    x = PAD
    for tone, text in (((255, 255, 255), "may attend"), ((0, 0, 0), "masked"), ((128, 128, 128), "partly (pooled)")):
        draw.rectangle([x, PAD + 2, x + lh - 4, PAD + lh - 2], fill=tone, outline=DIM)
        draw.text((x + lh + 2, PAD), text, font=face, fill=FG)
        x += lh + 2 + text_width(face, text) + 3 * PAD
    for k, line in enumerate(lines):
        draw.text((PAD, PAD + lh * (k + 1)), line, font=face, fill=DIM)
    return im


def render_overlays(sp: PreparedScene, output: np.ndarray) -> dict[str, Image.Image]:
    """All debug images for one rendered sample, by file stem."""
    images: dict[str, Image.Image] = {"layout": layout_to_pil(sp.composition)}
    for n in range(len(sp.composition.refs)):
        images[f"instance-{n}"] = instance_overlay(sp, output, n)
    images["masks"] = mask_maps(sp)
    return images
