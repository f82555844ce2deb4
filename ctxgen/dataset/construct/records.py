"""Kept items -> dataset records (`ctxgen.dataset.record`) -> shards through the dataset builder (`build.py`).

A basic/complex record: the t2i image as target; per kept instance the crop and its mask, the detection box, the
phrase, the repaint with its mask and `valid_box` (IMIG kontext_data). A composite record: the composed image as
target; per kept reference the reference cut-out and mask, the matched box (or the face box), and for a matched
face `kind: face` with the aligned face crop (D2). Torch-free.
"""

from __future__ import annotations

import io
from pathlib import Path

from ctxgen.core.errors import UserError
from ctxgen.dataset.build import BuildSummary, build, plan_jobs
from ctxgen.dataset.construct.config import ConstructConfig, config_from_dict, config_to_dict
from ctxgen.dataset.construct.store import StageStore
from ctxgen.dataset.record import ImageData, InstanceRecord, Record

FINAL = {"basic": "filter", "complex": "filter", "flexible": "match"}


def _encode(data: bytes, name: str, fmt: str) -> ImageData:
    """PNG bytes kept as PNG, or re-encoded as JPEG (quality 95, the IMIG files' format)."""
    if fmt == "png":
        return ImageData(data, name + ".png")
    from PIL import Image

    buf = io.BytesIO()
    with Image.open(io.BytesIO(data)) as im:
        im.convert("RGB").save(buf, format="JPEG", quality=95)
    return ImageData(buf.getvalue(), name + ".jpg")


def _box(values) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def basic_record(run: Path, cfg: ConstructConfig, item_id: str, kept: list[int], subset: str | None = None,
                 fmt: str | None = None) -> Record:
    """The record of one basic/complex item with the instances `kept` (largest first)."""
    fmt = fmt or cfg.output.image_format
    stores = {s: StageStore(run, s).done(item_id) for s in ("prompts", "t2i", "crop", "repaint", "segment")}
    missing = [s for s, d in stores.items() if d is None]
    if missing:
        raise FileNotFoundError(f"{missing[0]}/{item_id} is missing")
    seg, rep = stores["segment"], stores["repaint"]
    instances = []
    for k in kept:
        inst = seg.data["instances"][k]
        vbox = _box(inst["valid_box"]) if inst.get("valid_box") else None
        instances.append(InstanceRecord(
            image=_encode(stores["crop"].read(f"{k}.png"), f"{item_id}_{k}", fmt),
            mask=ImageData(seg.read(f"{k}_mask.png"), f"{item_id}_{k}_mask.png"),
            box=_box(inst["box"]), label=inst["phrase"], phrase=inst["phrase"], valid_box=vbox,
            enhanced_image=_encode(rep.read(f"{k}.png"), f"{item_id}_{k}_kontext", fmt),
            enhanced_mask=ImageData(seg.read(f"{k}_repaint_mask.png"), f"{item_id}_{k}_kontext_mask.png")))
    prompt = stores["prompts"].data
    meta = {"construct": {"index": prompt.get("index"), "nouns": prompt.get("nouns"),
                          "instances": [{"k": k, "score": seg.data["instances"][k]["score"],
                                         "instruction": seg.data["instances"][k]["instruction"]} for k in kept]}}
    return Record(id=f"{subset or cfg.subset}-{item_id}", subset=subset or cfg.subset, prompt=prompt["prompt"],
                  target=_encode(stores["t2i"].read("image.png"), item_id, fmt), instances=tuple(instances),
                  metadata=meta)


def composite_record(run: Path, cfg: ConstructConfig, item_id: str, subset: str | None = None,
                     fmt: str | None = None, pending=None) -> Record:
    """The record of one flexible item: the references `match` kept, in reference order (`pending`: a match
    Item not written yet, checked before it is)."""
    fmt = fmt or cfg.output.image_format
    prompt, refs = StageStore(run, "prompts").done(item_id), StageStore(run, "references").done(item_id)
    comp = StageStore(run, "compose").done(item_id)
    match = pending if pending is not None else StageStore(run, "match").done(item_id)
    if None in (prompt, refs, comp, match):
        raise FileNotFoundError(f"an earlier stage of {item_id} is missing")
    read = (lambda n: pending.files[n]) if pending is not None else match.read
    instances = []
    for k in match.data["kept"]:
        box, face = match.data["boxes"][k], match.data["faces"][k]
        extra: dict = {}
        if face is not None:
            extra = {"kind": "face", "face_image": ImageData(read(f"{k}_face.png"), f"{item_id}_{k}_face.png")}
        instances.append(InstanceRecord(
            image=_encode(refs.read(f"{k}.png"), f"{item_id}_{k}", fmt),
            mask=ImageData(refs.read(f"{k}_mask.png"), f"{item_id}_{k}_mask.png"),
            box=_box(box["bbox"] if box is not None else face["target"]),
            label=prompt.data["instance"][k], phrase=prompt.data["instance_prompt"][k], **extra))
    meta = {"construct": {"index": prompt.data.get("index"), "indices": match.data["kept"],
                          "bbox": [match.data["boxes"][k] for k in match.data["kept"]],
                          "face_bbox": [match.data["faces"][k] for k in match.data["kept"]]}}
    return Record(id=f"{subset or cfg.subset}-{item_id}", subset=subset or cfg.subset, prompt=prompt.data["prompt"],
                  target=_encode(comp.read("composite.png"), item_id, fmt), instances=tuple(instances),
                  metadata=meta)


def records_chunk(items: tuple, options: dict) -> tuple[list[Record], list[dict]]:
    """One shard's records (module-level, so the builder's worker processes can run it)."""
    cfg = config_from_dict(*options["config"])
    run = Path(options["run"])
    out, log = [], []
    for item_id, _key in items:
        try:
            if options["path"] == "flexible":
                out.append(composite_record(run, cfg, item_id, options["subset"], options["format"]))
            else:
                kept = StageStore(run, "filter").done(item_id).data["kept"]
                out.append(basic_record(run, cfg, item_id, kept, options["subset"], options["format"]))
        except (OSError, KeyError, ValueError, AttributeError) as exc:
            log.append({"level": "skip-record", "reason": "missing-file", "id": item_id, "message": str(exc)})
    return out, log


def write_dataset(run: Path, cfg: ConstructConfig, workers: int = 1, progress=None) -> BuildSummary:
    """Shards of every kept item of the path's final stage, in `RUN/<output.folder>` (resumable, atomic)."""
    store = StageStore(run, FINAL[cfg.path])
    items = []
    for item_id in store.ids():
        done = store.done(item_id)
        if done is not None and done.kept:
            items.append((item_id, done.key))
    options = {"run": str(Path(run).resolve()), "config": list(config_to_dict(cfg)), "path": cfg.path,
               "subset": cfg.subset, "format": cfg.output.image_format}
    jobs = plan_jobs(records_chunk, items, options, cfg.output.per_shard)
    args = dict(split=cfg.output.split, workers=workers, progress=progress,
                source={"construct": {"path": cfg.path, "config": cfg.digest()}})
    out = Path(run) / cfg.output.folder
    try:
        return build(out, jobs, **args)  # "up to date" when the kept items are those of the last build
    except UserError as exc:
        if "made from other inputs" not in str(exc):
            raise
    return build(out, jobs, force=True, **args)  # more (or other) items kept since: the shards are made again
