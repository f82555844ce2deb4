"""`construct report`: per stage, items in and out, rejection reasons (items and instances), failures, and a
contact sheet of random kept and rejected scenes with their boxes; a Markdown page and a JSON file. Torch-free."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np

from ctxgen.core.fsio import write_json, write_png, write_text
from ctxgen.core.pictures import font
from ctxgen.dataset.construct.config import ConstructConfig
from ctxgen.dataset.construct.records import FINAL
from ctxgen.dataset.construct.store import StageStore, read_rgb

THUMB = 192
GREEN, RED = (40, 200, 80), (230, 60, 50)


def stage_stats(run: Path, stage: str, upstream: str | None) -> dict:
    """Counts of one stage from its items (the current state) and its manifest (failures not yet redone)."""
    store = StageStore(run, stage)
    ids = store.ids()
    kept, reasons, dropped = 0, Counter(), Counter()
    for item_id in ids:
        done = store.done(item_id)
        if done is None:
            continue
        kept += done.kept
        if not done.kept:
            reasons[done.reason or "rejected"] += 1
        dropped.update(done.data.get("dropped", {}))
        dropped.update(done.data.get("instance_reasons", {}).values())
        dropped.update(r.get("reason") for r in done.data.get("refs", []) if not r.get("ok", True))
    last: dict[str, dict] = {}
    for entry in store.manifest():
        last[entry.get("item")] = entry
    failed = sorted(i for i, e in last.items() if e.get("status") == "failed" and i not in ids)
    inputs = None
    if upstream is not None:
        up = StageStore(run, upstream)
        inputs = sum(1 for i in up.ids() if (d := up.done(i)) is not None and d.kept)
    return {"stage": stage, "inputs": inputs, "done": len(ids), "kept": kept, "rejected": dict(reasons),
            "instances_dropped": dict(dropped), "failed": failed}


def _thumb(run: Path, cfg: ConstructConfig, item_id: str, kept: bool) -> np.ndarray | None:
    """A scene thumbnail with its boxes: kept instances green, dropped red, and a kept/rejected caption."""
    from PIL import Image, ImageDraw

    flexible = cfg.path == "flexible"
    src = StageStore(run, "compose" if flexible else "t2i").done(item_id)
    final = StageStore(run, FINAL[cfg.path]).done(item_id)
    if src is None or final is None:
        return None
    rgb = read_rgb(src.read("composite.png" if flexible else "image.png"), "scene")
    im = Image.fromarray(rgb).convert("RGB")
    scale = THUMB / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
    draw = ImageDraw.Draw(im)
    if flexible:
        boxes = [(b["bbox"], i in final.data.get("kept", [])) for i, b in enumerate(final.data.get("boxes", []))
                 if b is not None]
    else:
        det = StageStore(run, "detect").done(item_id)
        keep = set(final.data.get("kept", []))
        boxes = [(d["box"], i in keep) for i, d in enumerate(det.data["instances"])] if det is not None else []
    for box, good in boxes:
        draw.rectangle([v * scale for v in box], outline=GREEN if good else RED, width=2)
    canvas = Image.new("RGB", (THUMB, THUMB + 18), (255, 255, 255))
    canvas.paste(im, (0, 0))
    label = f"{item_id} kept" if kept else f"{item_id} {final.reason}"
    ImageDraw.Draw(canvas).text((3, THUMB + 3), label[:34], fill=GREEN if kept else RED, font=font(11))
    return np.asarray(canvas)


def contact_sheet(run: Path, cfg: ConstructConfig, n: int, seed: int) -> np.ndarray | None:
    """uint8 (H, W, 3): up to n random kept scenes on the first row(s), then up to n rejected ones."""
    store = StageStore(run, FINAL[cfg.path])
    done = [d for i in store.ids() if (d := store.done(i)) is not None]
    rng = random.Random(seed)
    picks = []
    for want in (True, False):
        pool = [d.id for d in done if d.kept == want]
        picks += [(i, want) for i in rng.sample(pool, min(n, len(pool)))]
    tiles = [t for i, k in picks if (t := _thumb(run, cfg, i, k)) is not None]
    if not tiles:
        return None
    cols = min(len(tiles), max(1, n))
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * (THUMB + 18), cols * THUMB, 3), 255, np.uint8)
    for j, tile in enumerate(tiles):
        r, c = divmod(j, cols)
        sheet[r * (THUMB + 18):(r + 1) * (THUMB + 18), c * THUMB:(c + 1) * THUMB] = tile
    return sheet


def build_report(run: Path, cfg: ConstructConfig, out: Path, samples: int = 6, seed: int = 0) -> dict:
    """Write report.json, report.md and contact-sheet.png into `out`; returns the stats."""
    from PIL import Image

    from ctxgen.dataset.construct.runner import stage_module

    stages = [stage_stats(run, s, None if s == "prompts" else stage_module(s).UPSTREAM) for s in cfg.stages]
    doc = {"run": str(run), "path": cfg.path, "stages": stages}
    manifest = Path(run) / cfg.output.folder / "dataset.json"
    if manifest.is_file():
        doc["dataset"] = json.loads(manifest.read_text(encoding="utf-8"))
    sheet = contact_sheet(run, cfg, samples, seed)
    out.mkdir(parents=True, exist_ok=True)
    if sheet is not None:
        write_png(out / "contact-sheet.png", Image.fromarray(sheet))
    write_json(out / "report.json", doc)
    write_text(out / "report.md", markdown(doc, sheet is not None))
    return doc


def markdown(doc: dict, sheet: bool) -> str:
    lines = [f"# Construct report: {doc['run']} ({doc['path']} path)", "",
             "| stage | in | done | kept | rejected (reason: items) | instances dropped | failed |",
             "|---|---:|---:|---:|---|---|---:|"]
    for s in doc["stages"]:
        rej = ", ".join(f"{k}: {v}" for k, v in sorted(s["rejected"].items())) or "-"
        drop = ", ".join(f"{k}: {v}" for k, v in sorted(s["instances_dropped"].items())) or "-"
        inputs = "-" if s["inputs"] is None else s["inputs"]
        lines.append(f"| {s['stage']} | {inputs} | {s['done']} | {s['kept']} | {rej} | {drop} | {len(s['failed'])} |")
    if "dataset" in doc:
        ds = doc["dataset"]
        lines += ["", f"Dataset: {ds.get('records', 0)} records in {len(ds.get('shards', []))} shard(s)."]
    if sheet:
        lines += ["", "Random kept (green caption) and rejected (red) scenes; boxes: kept instances green, "
                  "dropped red.",
                  "", "![contact sheet](contact-sheet.png)"]
    return "\n".join(lines) + "\n"
