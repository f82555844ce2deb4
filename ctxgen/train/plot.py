"""`ctxgen train plot LOG`: loss curves of a run log as one PNG (Pillow only), one panel per logged quantity."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ctxgen.core.errors import UserError
from ctxgen.core.pictures import BG, FG, PALETTE, font

LOG_NAME = "log.jsonl"  # RUN/log.jsonl, written by ctxgen.train.log
PANELS = ("loss", "lr", "grad_norm", "accuracy", "margin")  # plotted when the log has them
W, H, PAD = 640, 240, 48


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a log.jsonl; a line cut short by a kill is skipped."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def series(records: list[dict], key: str) -> list[tuple[int, float]]:
    """(step, value) of a key, the last record of each step winning (a resumed run logs a step again)."""
    points: dict[int, float] = {}
    for rec in records:
        value = rec.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            points[int(rec["step"])] = float(value)
    return sorted(points.items())


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard's smoothing)."""
    out, avg = [], 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight ** (i + 1)))
    return out


def _panel(title: str, points: list[tuple[int, float]], colour: tuple) -> Image.Image:
    im = Image.new("RGB", (W, H), BG)
    draw = ImageDraw.Draw(im)
    face = font(13)
    steps, values = [p[0] for p in points], [p[1] for p in points]
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + (abs(lo) or 1.0)
    s0, s1 = steps[0], max(steps[-1], steps[0] + 1)

    def xy(s: float, v: float) -> tuple[float, float]:
        return PAD + (W - 2 * PAD) * (s - s0) / (s1 - s0), H - PAD + (2 * PAD - H) * (v - lo) / (hi - lo)

    draw.rectangle([PAD, PAD // 2, W - PAD, H - PAD], outline=FG)
    draw.text((PAD, 4), f"{title}  (last {values[-1]:.4g})", fill=FG, font=face)
    draw.text((4, PAD // 2), f"{hi:.3g}", fill=FG, font=face)
    draw.text((4, H - PAD - 14), f"{lo:.3g}", fill=FG, font=face)
    draw.text((PAD, H - PAD + 6), f"step {s0}", fill=FG, font=face)
    draw.text((W - PAD - 80, H - PAD + 6), f"step {s1}", fill=FG, font=face)
    if len(points) > 1:
        faint = tuple(int(c * 0.4 + b * 0.6) for c, b in zip(colour, BG))
        draw.line([xy(s, v) for s, v in points], fill=faint, width=1)
        draw.line([xy(s, v) for s, v in zip(steps, smooth(values))], fill=colour, width=2)
    else:
        x, y = xy(s0, values[0])
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    return im


def plot_log(path: Path) -> Image.Image:
    """The PNG of a run log: one panel per quantity it holds, raw (faint) and smoothed."""
    if not path.is_file():
        raise UserError(f"{path}: no such log; give RUN/log.jsonl (or the run folder)")
    records = [r for r in read_log(path) if isinstance(r.get("step"), int)]
    panels = [(key, pts) for key in PANELS if (pts := series(records, key))]
    if not panels:
        raise UserError(f"{path}: holds no logged steps yet")
    out = Image.new("RGB", (W, H * len(panels)), BG)
    for i, (key, pts) in enumerate(panels):
        out.paste(_panel(key, pts, PALETTE[i % len(PALETTE)]), (0, H * i))
    return out
