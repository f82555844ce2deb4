"""Debug attention-mask overlays: which main tokens draw on each reference, and maps of the CLA/ICA masks."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ctxgen.core.pictures import BG, FG, font, instance_colour, to_uint8
from ctxgen.core.units import TOKEN
from ctxgen.layout.compose import layout_to_pil
from ctxgen.sequence.masks import MASK_KINDS, ClassMask
from ctxgen.sequence.prepare import PreparedScene
from ctxgen.sequence.tokens import span

MAP_SIZE = 512


def attending_tokens(table: ClassMask, tokens, n: int) -> np.ndarray:
    """bool (Ht, Wt): main tokens whose query row may attend to any token of reference n."""
    ref = span(tokens, f"ref{n}")
    main = span(tokens, "main")
    sees = table.keys[:, ref].any(axis=1)  # (C,)
    return sees[table.row_class[main]].reshape(tokens.grid)  # (M,) -> (Ht, Wt)


def _tint(image: np.ndarray, cells: np.ndarray, colour: tuple[int, int, int], alpha: float = 0.45) -> np.ndarray:
    """Blend `colour` over the token cells where `cells` (th, tw) is True."""
    up = np.kron(cells, np.ones((TOKEN, TOKEN), dtype=bool))[: image.shape[0], : image.shape[1]]  # (h, w)
    out = image.astype(np.float32)
    out[up] = (1 - alpha) * out[up] + alpha * np.asarray(colour, np.float32)
    return out.astype(np.uint8)


def instance_overlay(sp: PreparedScene, output: np.ndarray, n: int) -> Image.Image:
    """The output with the ICA-attending main tokens of reference n tinted and its box, beside the reference."""
    colour = instance_colour(n)
    cells = attending_tokens(sp.masks.table("ica"), sp.tokens, n)
    left = Image.fromarray(_tint(output, cells, colour))
    draw = ImageDraw.Draw(left)
    draw.rectangle(sp.composition.boxes[n], outline=colour, width=3)
    ref = sp.composition.refs[n]
    right = Image.fromarray(_tint(to_uint8(ref.pixels), ref.token_mask, colour))
    scale = left.height / right.height
    right = right.resize((max(1, round(right.width * scale)), left.height), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (left.width + right.width + 8, left.height + 24), BG)
    canvas.paste(left, (0, 24))
    canvas.paste(right, (left.width + 8, 24))
    label = sp.scene.instances[n].label or f"#{n}"
    ImageDraw.Draw(canvas).text((4, 4), f"instance {n} ({label}): main tokens attending to ref{n} under ICA",
                                fill=FG, font=font(14))
    return canvas


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


def mask_maps(sp: PreparedScene) -> Image.Image:
    """Both masks side by side, white = may attend, with the span boundaries labelled."""
    panels = []
    for kind in MASK_KINDS:
        table = sp.masks.table(kind)
        grid = pooled_map(table)
        im = Image.fromarray(np.rint(grid * 255).astype(np.uint8)).resize((MAP_SIZE, MAP_SIZE), Image.Resampling.NEAREST)
        im = im.convert("RGB")
        draw = ImageDraw.Draw(im)
        s = table.row_class.shape[0]
        for name, (start, _) in zip(sp.tokens.span_names, sp.tokens.span_bounds):
            pos = int(start) * MAP_SIZE / s
            draw.line([(pos, 0), (pos, MAP_SIZE)], fill=(220, 60, 60), width=1)
            draw.line([(0, pos), (MAP_SIZE, pos)], fill=(220, 60, 60), width=1)
            draw.text((pos + 2, 2), name, fill=(250, 200, 40), font=font(11))
        panel = Image.new("RGB", (MAP_SIZE, MAP_SIZE + 22), BG)
        panel.paste(im, (0, 22))
        ImageDraw.Draw(panel).text((4, 3), f"{kind.upper()}  ({100 * sp.masks.density(kind):.1f}% allowed)",
                                   fill=FG, font=font(14))
        panels.append(panel)
    out = Image.new("RGB", (2 * MAP_SIZE + 8, MAP_SIZE + 22), BG)
    out.paste(panels[0], (0, 0))
    out.paste(panels[1], (MAP_SIZE + 8, 0))
    return out


def render_overlays(sp: PreparedScene, output: np.ndarray) -> dict[str, Image.Image]:
    """All debug images for one rendered sample, by file stem."""
    images: dict[str, Image.Image] = {"layout": layout_to_pil(sp.composition)}
    for n in range(len(sp.composition.refs)):
        images[f"instance-{n}"] = instance_overlay(sp, output, n)
    images["masks"] = mask_maps(sp)
    return images
