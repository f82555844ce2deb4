"""Stage `segment`: SAM 2.1 masks of every crop (its whole frame as the box prompt) and of every repaint (its
`valid_box`, else its whole frame) (D3 step 7). The published code uses a referring-segmentation model (DeRIS)
that is not packaged; SAM 2.1 with a box prompt is the substitute."""

from __future__ import annotations

import numpy as np

from ctxgen.dataset.construct.context import Context
from ctxgen.dataset.construct.store import Done, Item, mask_png, read_rgb

UPSTREAM = "repaint"


def box_mask(segmenter, rgb: np.ndarray, box) -> np.ndarray:
    """bool (h, w): the segmenter's mask for one box prompt (the whole frame when `box` is None)."""
    h, w = rgb.shape[:2]
    prompt = np.asarray([box if box is not None else [0, 0, w, h]], dtype=np.float64)  # (1, 4)
    masks, _ = segmenter.segment(rgb, prompt, multimask=False)
    return masks[0]


def run(ctx: Context, up: Done) -> Item:
    seg = ctx.models.get("segmenter")
    crops = ctx.done("crop", up.id)
    files, instances = {}, []
    for k, inst in enumerate(up.data["instances"]):
        crop = read_rgb(crops.read(f"{k}.png"), f"{k}.png")
        repaint = read_rgb(up.read(f"{k}.png"), f"{k}.png")
        mask, rmask = box_mask(seg, crop, None), box_mask(seg, repaint, inst.get("valid_box"))
        files[f"{k}_mask.png"], files[f"{k}_repaint_mask.png"] = mask_png(mask), mask_png(rmask)
        instances.append({**inst, "mask_px": int(mask.sum()), "repaint_mask_px": int(rmask.sum())})
    return Item(up.id, {"instances": instances}, files)
