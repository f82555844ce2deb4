"""One self-contained HTML page comparing runs: the tables side by side, per-group bar charts (inline SVG) and a
gallery of the worst instances (image crop with its box and mask, and the reference), thumbnails as base64 JPEG.
No scripts, no network: the page opens from disk anywhere."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ctxgen.core.errors import UserError
from ctxgen.core.fsio import write_text
from ctxgen.eval.masks import decode
from ctxgen.eval.tables import COLUMNS, fmt, rows

log = logging.getLogger(__name__)
THUMB = 180
CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}h1{font-size:20px}
h2{font-size:16px;margin-top:28px}.runs{display:flex;gap:24px;flex-wrap:wrap}.run{background:#fff;padding:12px;
border:1px solid #ddd;border-radius:6px}table{border-collapse:collapse}td,th{padding:3px 8px;text-align:right;
border-bottom:1px solid #eee}td:first-child,th:first-child{text-align:left}.small{color:#666;font-size:12px}
.gallery{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid #ddd;border-radius:6px;
padding:8px;width:380px}.card img{margin-right:4px;vertical-align:top}"""
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def load_run(path: Path) -> dict:
    p = Path(path)
    p = p / "metrics.json" if p.is_dir() else p
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{p}: not a readable metrics.json ({exc})") from exc
    if not isinstance(data, dict) or "benchmark" not in data or "summary" not in data:
        raise UserError(f"{p}: not a ctxgen eval metrics.json (no benchmark/summary)")
    data["_name"] = p.parent.name
    return data


def _table(run: dict) -> str:
    cols = COLUMNS[run["benchmark"]]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("", *cols))
    body = "".join("<tr><td>" + html.escape(label) + "</td>" + "".join(f"<td>{fmt(v.get(c))}</td>" for c in cols)
                   + "</tr>" for label, v in rows(run["benchmark"], run["summary"]))
    c = run.get("counts", {})
    note = f"{c.get('scored', '?')} scored, {c.get('missing', 0)} missing, {c.get('failed', 0)} failed"
    return (f"<div class='run'><b>{html.escape(run['_name'])}</b> <span class='small'>{note}</span>"
            f"<table><tr>{head}</tr>{body}</table></div>")


def _chart(runs: list[dict], metric: str) -> str:
    """Grouped bars: one group per table row (level / group), one bar per run."""
    groups = [label for label, _ in rows(runs[0]["benchmark"], runs[0]["summary"])]
    values = [[dict(rows(r["benchmark"], r["summary"])).get(g, {}).get(metric) for g in groups] for r in runs]
    finite = [v for vs in values for v in vs if isinstance(v, (int, float))]
    if not finite:
        return ""
    top = max(max(finite), 1e-9)
    bw, gap, h = 18, 14, 120
    width = len(groups) * (len(runs) * bw + gap) + 40
    parts = [f"<svg width='{width}' height='{h + 40}' xmlns='http://www.w3.org/2000/svg'>",
             f"<text x='0' y='12' font-size='12'>{html.escape(metric)}</text>"]
    for gi, g in enumerate(groups):
        x0 = 30 + gi * (len(runs) * bw + gap)
        for ri, vs in enumerate(values):
            v = vs[gi]
            if not isinstance(v, (int, float)):
                continue
            bh = max(0.0, v) / top * h
            parts.append(f"<rect x='{x0 + ri * bw}' y='{20 + h - bh:.1f}' width='{bw - 2}' height='{bh:.1f}' "
                         f"fill='{COLOURS[ri % len(COLOURS)]}'><title>{html.escape(runs[ri]['_name'])}: "
                         f"{v:.2f}</title></rect>")
        short = g.split(" ")[-1].strip("()")  # "fewer (2-3)" -> "2-3"
        parts.append(f"<text x='{x0}' y='{h + 34}' font-size='11'>{html.escape(short[:6])}</text>")
    return "".join(parts) + "</svg>"


def _jpeg(img: Image.Image) -> str:
    img = img.convert("RGB")
    if max(img.size) < THUMB // 2:  # small crops are enlarged (pixels kept sharp) so they can be seen
        k = (THUMB // 2) / max(img.size)
        img = img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.Resampling.NEAREST)
    img.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return "<img src='data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode() + "'>"


def _worst(run: dict, n: int) -> list[dict]:
    """The lowest-scoring instances: IPS/IDS entries, failed COCO-MIG instances, LayoutSAM regions, identity."""
    items = []
    for rec in run.get("images", []):
        if "error" in rec:
            continue
        bench = run["benchmark"]
        entries = (rec.get("ips", []) + rec.get("ids", []) if bench == "lamic" else rec.get("instances", [])
                   if bench in ("cocomig", "identity") else rec.get("regions", []))
        for e in entries:
            score = (e.get("score") if bench == "lamic" else e.get("miou") if bench == "cocomig" else
                     e.get("dino", e.get("clip")) if bench == "identity" else
                     sum(e.get(k, 0) for k in ("spatial", "colour", "texture", "shape")) / 4)
            items.append((float(score or 0.0), rec, e))
    items.sort(key=lambda t: t[0])
    return [{"score": s, "record": r, "entry": e} for s, r, e in items[:n]]


def _card(item: dict, bench: str) -> str:
    rec, e = item["record"], item["entry"]
    try:
        with Image.open(rec["image"]) as im:
            img = im.convert("RGB")
    except OSError:
        return ""
    scale = img.width / 512 if bench == "cocomig" else 1.0
    shown = img.copy()
    if e.get("mask"):
        m = Image.fromarray(decode(e["mask"]).astype(np.uint8) * 255).resize(img.size, Image.Resampling.NEAREST)
        tint = Image.new("RGB", img.size, (30, 144, 255))
        shown = Image.composite(Image.blend(img, tint, 0.45), img, m)
    draw = ImageDraw.Draw(shown)
    for key, colour in (("gt", (40, 200, 40)), ("box", (230, 40, 40))):
        if e.get(key):
            draw.rectangle([v * scale for v in e[key]], outline=colour, width=max(2, img.width // 150))
    pics = _jpeg(shown)
    if e.get("box"):
        x1, y1, x2, y2 = (int(v * scale) for v in e["box"])
        if x2 > x1 and y2 > y1:
            pics += _jpeg(img.crop((x1, y1, x2, y2)))
    ref = e.get("ref_image")
    if ref and Path(ref).is_file():
        with Image.open(ref) as r:
            pics += _jpeg(r.copy())
    label = e.get("phrase") or e.get("label") or e.get("caption") or f"reference {e.get('ref', '')}"
    return (f"<div class='card'>{pics}<div class='small'>{html.escape(Path(rec['image']).name)} — "
            f"{html.escape(str(label)[:60])}: <b>{item['score']:.3f}</b></div></div>")


def write_report(paths: list[Path], out: Path, worst: int = 24) -> Path:
    """Write the comparison page for runs of one benchmark."""
    runs = [load_run(p) for p in paths]
    benches = {r["benchmark"] for r in runs}
    if len(benches) > 1:
        raise UserError(f"report: the runs are of different benchmarks ({', '.join(sorted(benches))}); "
                        "compare runs of one benchmark")
    bench = runs[0]["benchmark"]
    charts = "".join(_chart(runs, m) for m in COLUMNS[bench])
    gallery = "".join(_card(item, bench) for run in runs for item in _worst(run, worst // len(runs) or 1))
    legend = " ".join(f"<span style='color:{COLOURS[i % len(COLOURS)]}'>■</span> {html.escape(r['_name'])}"
                      for i, r in enumerate(runs))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>ctxgen eval: {bench}</title>"
            f"<style>{CSS}</style></head><body><h1>ctxgen eval — {html.escape(bench)}</h1>"
            f"<h2>Tables</h2><div class='runs'>{''.join(_table(r) for r in runs)}</div>"
            f"<h2>Per group</h2><p class='small'>{legend}</p>{charts}"
            f"<h2>Worst instances</h2><p class='small'>green: ground-truth box, red: detector box, blue: mask; "
            f"then the crop and the reference</p><div class='gallery'>{gallery}</div></body></html>")
    write_text(Path(out), page)
    return Path(out)
