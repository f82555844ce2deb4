"""`ctxgen dataset stats`: counts per subset, instances per record, box size and aspect distributions. Torch-free.

Box size is sqrt(box area / target area) (0.5 = a box a quarter of the picture); aspect is log2(width / height)
of the box (0 = square, 1 = twice as wide as high). The numbers come as a table and as a PNG of four bar charts.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from ctxgen.core.pictures import BG, FG, PALETTE, font

SIZE_BINS = tuple(round(0.1 * k, 1) for k in range(11))  # 0.0 .. 1.0
ASPECT_BINS = tuple(k / 2 for k in range(-6, 7))  # log2(w/h): -3 .. 3


@dataclass
class Stats:
    records: int = 0
    bad_rows: int = 0
    subsets: Counter = field(default_factory=Counter)
    instances: Counter = field(default_factory=Counter)  # instances per record -> records
    kinds: Counter = field(default_factory=Counter)
    extras: Counter = field(default_factory=Counter)  # rejected, layout, repainted, face crop, seed
    target_sizes: Counter = field(default_factory=Counter)
    box_size: list = field(default_factory=list)
    box_aspect: list = field(default_factory=list)

    def add(self, rec) -> None:
        """Count one record (target size from its header only)."""
        w, h = rec.target.size()
        self.records += 1
        self.subsets[rec.subset] += 1
        self.instances[len(rec.instances)] += 1
        self.target_sizes[f"{w}x{h}"] += 1
        for name in ("rejected", "layout", "seed"):
            self.extras[name] += getattr(rec, name) is not None
        for inst in rec.instances:
            self.kinds[inst.kind] += 1
            self.extras["repainted reference"] += inst.enhanced_image is not None
            self.extras["face crop"] += inst.face_image is not None
            bw, bh = inst.box[2] - inst.box[0], inst.box[3] - inst.box[1]
            if bw > 0 and bh > 0:
                self.box_size.append(math.sqrt(bw * bh / (w * h)))
                self.box_aspect.append(math.log2(bw / bh))

    @staticmethod
    def histogram(values: list, bins: tuple) -> list[tuple[str, int]]:
        """(label, count) per bin [b_k, b_k+1); values outside the edges go to the first or last bin."""
        counts = [0] * (len(bins) - 1)
        for v in values:
            counts[min(max(bisect.bisect_right(bins, v) - 1, 0), len(counts) - 1)] += 1
        return [(f"{bins[k]:g}..{bins[k + 1]:g}", c) for k, c in enumerate(counts)]

    def to_dict(self) -> dict:
        return {"records": self.records, "bad_rows": self.bad_rows, "subsets": dict(sorted(self.subsets.items())),
                "instances_per_record": {str(k): v for k, v in sorted(self.instances.items())},
                "kinds": dict(self.kinds), "extras": dict(self.extras),
                "target_sizes": dict(self.target_sizes.most_common(8)),
                "box_size": dict(self.histogram(self.box_size, SIZE_BINS)),
                "box_aspect_log2": dict(self.histogram(self.box_aspect, ASPECT_BINS))}

    def table(self) -> str:
        """The numbers as a plain-text table."""
        d = self.to_dict()
        bad = f"  ({self.bad_rows} unreadable rows)" if self.bad_rows else ""
        lines = [f"{'records':<39} {d['records']:>8}{bad}"]
        per = {"rejected": self.records, "layout": self.records, "seed": self.records}
        for title, key in (("subset", "subsets"), ("instances/record", "instances_per_record"), ("kind", "kinds"),
                           ("with", "extras"), ("target size", "target_sizes"), ("box size", "box_size"),
                           ("box aspect log2", "box_aspect_log2")):
            for k, v in d[key].items():
                total = (per.get(k, len(self.box_size)) if key == "extras" else sum(d[key].values())) or 1
                lines.append(f"{title:<18} {k:<20} {v:>8}  {100 * v / total:5.1f}%")
                title = ""
        return "\n".join(lines)


def _bars(title: str, rows: list[tuple[str, int]], colour: tuple, w: int = 520, h: int = 300) -> Image.Image:
    """One bar chart: a bar per row, its count on top, its label below."""
    im = Image.new("RGB", (w, h), BG)
    d = ImageDraw.Draw(im)
    d.text((10, 6), title, fill=FG, font=font(15))
    top, bottom, left, right = 34, h - 44, 40, w - 10
    d.line([(left, bottom), (right, bottom)], fill=FG)
    peak = max([c for _, c in rows] + [1])
    slot = (right - left) / max(1, len(rows))
    small = font(10)
    for k, (label, count) in enumerate(rows):
        x0 = left + k * slot + slot * 0.15
        x1 = left + (k + 1) * slot - slot * 0.15
        y = bottom - (bottom - top - 14) * count / peak
        d.rectangle([x0, y, x1, bottom], fill=colour)
        d.text(((x0 + x1) / 2, y - 2), str(count), fill=FG, font=small, anchor="md")
        for line, text in enumerate(label.split("..")):
            d.text(((x0 + x1) / 2, bottom + 4 + 11 * line), text + (".." if line == 0 and ".." in label else ""),
                   fill=FG, font=small, anchor="ma")
    return im


def plot(stats: Stats) -> Image.Image:
    """Four bar charts: records per subset, instances per record, box size, box aspect."""
    d = stats.to_dict()
    charts = [
        _bars("records per subset", list(d["subsets"].items()), PALETTE[2]),
        _bars("instances per record", list(d["instances_per_record"].items()), PALETTE[1]),
        _bars("box size: sqrt(box area / image area)", list(d["box_size"].items()), PALETTE[3]),
        _bars("box aspect: log2(width / height)", list(d["box_aspect_log2"].items()), PALETTE[4]),
    ]
    out = Image.new("RGB", (2 * charts[0].width + 30, 2 * charts[0].height + 50), BG)
    ImageDraw.Draw(out).text((10, 8), f"{stats.records} records, {len(stats.box_size)} instances", fill=FG,
                             font=font(16))
    for k, chart in enumerate(charts):
        out.paste(chart, (10 + (k % 2) * (chart.width + 10), 36 + (k // 2) * (chart.height + 6)))
    return out
