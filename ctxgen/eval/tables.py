"""The paper's table layouts as plain text (E5), from a metrics.json summary. Torch-free."""

from __future__ import annotations

COLUMNS = {
    "lamic": ("ITC", "AES", "IDS", "IPS", "AVG"),
    "cocomig": ("SR", "I-SR", "mIoU", "G-C", "L-C"),
    "layoutsam": ("spatial", "colour", "texture", "shape", "CLIP", "Pick"),
    "identity": ("dino", "clip"),
}
ROW_NAMES = {"2-3": "fewer (2-3)", "4+": "more (4+)", "all": "all"}


def rows(bench: str, summary: dict) -> list[tuple[str, dict]]:
    """(row label, values) in the paper's order: LAMIC groups, COCO-MIG levels then all, else all first."""
    if bench == "lamic":
        return [(ROW_NAMES[k], summary[k]) for k in ("2-3", "4+", "all") if k in summary]
    if bench == "cocomig":
        return [(k, v) for k, v in summary.get("levels", {}).items()] + [("all", summary["all"])]
    return [(k, v) for k, v in summary.items()]


def fmt(v: object) -> str:
    return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)


def text_table(bench: str, summary: dict, title: str = "") -> str:
    """A fixed-width table: one row per group, the benchmark's columns, two decimals."""
    cols = COLUMNS[bench]
    body = [[label] + [fmt(vals.get(c)) for c in cols] for label, vals in rows(bench, summary)]
    head = [title or bench] + list(cols)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, body)])
