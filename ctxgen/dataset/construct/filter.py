"""Stage `filter` (last of the basic/complex path): the D3 rules (2-5 instances, largest kept; area >= 1 %; mask
fit >= 0.6 for the crop and the repaint), every rejection counted by reason; the kept record is checked as
`ctxgen dataset validate` would check it before it may reach a shard."""

from __future__ import annotations

from ctxgen.dataset.construct.context import Context
from ctxgen.dataset.construct.filters import Candidate, filter_scene
from ctxgen.dataset.construct.store import Done, Item, read_mask

UPSTREAM = "segment"


def run(ctx: Context, up: Done) -> Item:
    from ctxgen.dataset.checks import check_record
    from ctxgen.dataset.construct.records import basic_record

    cfg = ctx.cfg.filter
    w, h = ctx.done("detect", up.id).data["size"]
    cands = []
    for k, inst in enumerate(up.data["instances"]):
        mask = read_mask(up.read(f"{k}_mask.png"), f"{k}_mask.png")
        rmask = read_mask(up.read(f"{k}_repaint_mask.png"), f"{k}_repaint_mask.png")
        vbox = tuple(inst["valid_box"]) if inst.get("valid_box") else None
        cands.append(Candidate(tuple(inst["box"]), mask, rmask, vbox))
    kept, reasons, rejected = filter_scene(cands, w, h, cfg.min_instances, ctx.cfg.max_instances(), cfg.min_area,
                                           cfg.min_fit)
    data = {"kept": kept, "instance_reasons": {str(k): v for k, v in sorted(reasons.items())}}
    if rejected is not None:
        return Item(up.id, data, kept=False, reason=rejected)
    problems = check_record(basic_record(ctx.run, ctx.cfg, up.id, kept), pixels=False)
    if problems:
        data["problems"] = [str(p) for p in problems]
        return Item(up.id, data, kept=False, reason=f"invalid-{problems[0].reason}")
    return Item(up.id, data)
