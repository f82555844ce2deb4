"""Stage `crop`: each detected box cut from the scene image (D3 step 4); no model."""

from __future__ import annotations

from ctxgen.dataset.construct.context import Context
from ctxgen.dataset.construct.store import Done, Item, png, read_rgb

UPSTREAM = "detect"


def run(ctx: Context, up: Done) -> Item:
    target = ctx.done("t2i", up.id)
    rgb = read_rgb(target.read("image.png"), "image.png")
    files = {}
    for k, inst in enumerate(up.data["instances"]):
        x1, y1, x2, y2 = inst["box"]
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"instance {k}: box {inst['box']} has no area")
        files[f"{k}.png"] = png(rgb[y1:y2, x1:x2])  # (y2-y1, x2-x1, 3)
    return Item(up.id, {"instances": up.data["instances"]}, files)
