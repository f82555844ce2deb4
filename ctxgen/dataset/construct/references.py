"""Stage `references` (flexible path): one image per reference prompt with FLUX.1-dev at 768², 12 steps, then cut
out by Grounding DINO (box 0.3, text 0.25, best score) and masked by SAM 2.1 in the crop (D4)."""

from __future__ import annotations

from ctxgen.dataset.construct.context import Context
from ctxgen.dataset.construct.detect import ground
from ctxgen.dataset.construct.segment import box_mask
from ctxgen.dataset.construct.store import Done, Item, mask_png, png
from ctxgen.dataset.construct.t2i import generate

UPSTREAM = "prompts"


def run(ctx: Context, up: Done) -> Item:
    import numpy as np

    cfg = ctx.cfg.references
    pipe, detector, seg = ctx.models.get("t2i"), ctx.models.get("detector"), ctx.models.get("segmenter")
    files, refs = {}, []
    for k, text in enumerate(up.data["instance_prompt"]):
        image = generate(pipe, text, cfg, ctx.torch_generator(up.id, k)).convert("RGB")
        files[f"{k}_full.png"] = png(image)
        found = [d for d in ground(detector, image, text, cfg.box_threshold, cfg.text_threshold, order="score")
                 if d["box"][2] > d["box"][0] and d["box"][3] > d["box"][1]]
        if not found:
            refs.append({"k": k, "ok": False, "reason": "no-detection"})
            continue
        x1, y1, x2, y2 = found[0]["box"]
        crop = np.asarray(image)[y1:y2, x1:x2]  # (h, w, 3)
        mask = box_mask(seg, crop, None)
        files[f"{k}.png"], files[f"{k}_mask.png"] = png(crop), mask_png(mask)
        ok = bool(mask.any())
        refs.append({"k": k, "ok": ok, "box": found[0]["box"], "score": found[0]["score"],
                     **({} if ok else {"reason": "empty-mask"})})
    usable = sum(r["ok"] for r in refs)
    need = ctx.cfg.match.min_instances
    return Item(up.id, {"refs": refs}, files, kept=usable >= need,
                reason=None if usable >= need else "too-few-references")
