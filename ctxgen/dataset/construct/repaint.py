"""Stage `repaint`: each crop repainted by FLUX.1-Kontext with "keep only X" and a weighted edit, then detected
again for its `valid_box` (D3 steps 5 and 6)."""

from __future__ import annotations

from ctxgen.dataset.construct.context import Context
from ctxgen.dataset.construct.detect import ground
from ctxgen.dataset.construct.filters import choose_edit, instruction, repaint_size
from ctxgen.dataset.construct.store import Done, Item, png, read_rgb

UPSTREAM = "crop"


def run(ctx: Context, up: Done) -> Item:
    from PIL import Image

    cfg = ctx.cfg.repaint
    pipe, detector = ctx.models.get("editor"), ctx.models.get("detector")
    files, instances = {}, []
    for k, inst in enumerate(up.data["instances"]):
        crop = Image.fromarray(read_rgb(up.read(f"{k}.png"), f"{k}.png"))
        w, h = repaint_size(crop.width, crop.height, cfg.area)
        u, v = ctx.rng(up.id, k).random(2)
        text = instruction(inst["phrase"], *choose_edit(float(u), float(v), cfg.edits))
        out = pipe(image=crop.resize((w, h), Image.Resampling.BICUBIC), prompt=text, width=w, height=h,
                   num_inference_steps=cfg.steps, guidance_scale=cfg.guidance, max_sequence_length=cfg.text_len,
                   max_area=w * h, _auto_resize=False, generator=ctx.torch_generator(up.id, k)).images[0]
        out = out.convert("RGB")
        found = ground(detector, out, inst["phrase"], cfg.box_threshold, cfg.text_threshold)
        valid = found[0]["box"] if found and found[0]["box"][2] > found[0]["box"][0] \
            and found[0]["box"][3] > found[0]["box"][1] else None
        files[f"{k}.png"] = png(out)
        instances.append({**inst, "instruction": text, "repaint_size": [w, h], "valid_box": valid})
    return Item(up.id, {"instances": instances}, files)
