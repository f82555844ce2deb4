"""Stage `compose` (flexible path): the scene composed from its references (D4: 512², 28 steps, guidance 3.5).

The published subject-driven model (MOSAIC: FLUX.1-dev + a subject LoRA run by its own multi-condition sampler)
is not loadable with diffusers' stock pipelines, so ctxgen substitutes FLUX.1-Kontext: each usable reference is
cut out on white, padded to a `ref_size` square at `ref_scale` (as the published preprocessing does), the squares
are laid side by side as Kontext's context image, and the scene prompt is the instruction."""

from __future__ import annotations

import numpy as np

from ctxgen.dataset.construct.context import Context
from ctxgen.dataset.construct.store import Done, Item, png, read_mask, read_rgb

UPSTREAM = "references"


def on_white(rgb: np.ndarray, mask: np.ndarray, side: int, scale: float) -> np.ndarray:
    """uint8 (side, side, 3): the masked subject on white, scaled to `scale` of the square, centred."""
    from PIL import Image

    cut = np.where(mask[..., None], rgb, 255).astype(np.uint8)  # (h, w, 3)
    h, w = cut.shape[:2]
    f = side * scale / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = np.asarray(Image.fromarray(cut).resize(size, Image.Resampling.LANCZOS))
    out = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - size[1]) // 2, (side - size[0]) // 2
    out[top:top + size[1], left:left + size[0]] = small
    return out


def run(ctx: Context, up: Done) -> Item:
    from PIL import Image

    cfg = ctx.cfg.compose
    prompt = ctx.done("prompts", up.id).data["prompt"]
    squares = []
    for ref in up.data["refs"]:
        if not ref["ok"]:
            continue
        k = ref["k"]
        square = on_white(read_rgb(up.read(f"{k}.png"), f"{k}.png"), read_mask(up.read(f"{k}_mask.png"), "m"),
                          cfg.ref_size, cfg.ref_scale)
        if square.mean() <= 250:  # an all-white reference is dropped, as published
            squares.append(square)
    if len(squares) < ctx.cfg.match.min_instances:
        return Item(up.id, {"references": len(squares)}, kept=False, reason="too-few-references")
    context = Image.fromarray(np.concatenate(squares, axis=1))  # (ref_size, n * ref_size, 3)
    w, h = cfg.size
    out = ctx.models.get("editor")(image=context, prompt=prompt, width=w, height=h, num_inference_steps=cfg.steps,
                                   guidance_scale=cfg.guidance, max_sequence_length=cfg.text_len,
                                   max_area=w * h, _auto_resize=False,
                                   generator=ctx.torch_generator(up.id)).images[0]
    files = {"composite.png": png(out.convert("RGB")), "context.png": png(context)}
    return Item(up.id, {"references": len(squares), "size": [w, h]}, files)
