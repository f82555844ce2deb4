"""Benchmark aggregates from per-image records, exactly as the published scripts sum them (E1-E3). Torch-free.

A record is the JSON-ready dict one image's evaluation produced (see `ctxgen.eval.cocomig`, `lamic`, `layoutsam`);
records of images that could not be scored carry `"error"` and are counted, never averaged in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["LAMIC_GROUPS", "cocomig_summary", "lamic_avg", "lamic_bucket", "lamic_summary", "layoutsam_summary"]

LAMIC_GROUPS = {"2-3": (2, 3), "4+": (4, 5, 6)}  # print_score's "fewer" and "more" (buckets capped at 6)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _scored(records: Iterable[dict]) -> list[dict]:
    return [r for r in records if "error" not in r]


def cocomig_summary(records: Iterable[dict]) -> dict:
    """SR, I-SR, mIoU per level and overall; G-C over images, L-C over instances (E1). Ratios in %."""
    recs = _scored(records)
    levels = sorted({len(r["instances"]) for r in recs})

    def block(rs: list[dict]) -> dict:
        inst = [i for r in rs for i in r["instances"]]
        return {"images": len(rs), "instances": len(inst),
                "SR": 100 * _mean([float(all(i["success"] for i in r["instances"])) for r in rs]),
                "I-SR": 100 * _mean([float(i["success"]) for i in inst]),
                "mIoU": 100 * _mean([i["miou"] for i in inst])}

    out = {"all": block(recs), "levels": {f"L{n}": block([r for r in recs if len(r["instances"]) == n])
                                          for n in levels}}
    gc = [r["gc"] for r in recs if r.get("gc") is not None]
    lc = [i["lc"] for r in recs for i in r["instances"] if i.get("lc") is not None]
    out["all"]["G-C"] = _mean(gc) if gc else None
    out["all"]["L-C"] = _mean(lc) if lc else None
    return out


def lamic_bucket(n_refs: int) -> int:
    """print_score's bucket of a benchmark item: its number of references, capped at 6 (E3)."""
    return min(int(n_refs), 6)


def lamic_avg(scores: dict) -> float:
    """AVG = (AES*10 + (ITC + IDS + IPS)*100) / 4, from raw (unscaled) AES, ITC, IDS, IPS (E3)."""
    return (scores["AES"] * 10 + (scores["ITC"] + scores["IDS"] + scores["IPS"]) * 100) / 4


def _lamic_block(recs: list[dict]) -> dict:
    """AES and ITC per sample image, IDS and IPS per reference; every sum pooled over the group (E3)."""
    faces = [s for r in recs for s in r["ids"]]
    objects = [s for r in recs for s in r["ips"]]
    raw = {"AES": _mean([r["aes"] for r in recs]), "ITC": _mean([r["itc"] for r in recs]),
           "IDS": _mean([s["score"] for s in faces]), "IPS": _mean([s["score"] for s in objects])}
    shown = {"AES": raw["AES"] * 10, "ITC": raw["ITC"] * 100, "IDS": raw["IDS"] * 100, "IPS": raw["IPS"] * 100}
    shown["AVG"] = lamic_avg(raw)
    return {**shown, "samples": len(recs), "faces": len(faces), "objects": len(objects),
            "no_detection": sum(1 for s in objects if s.get("no_detection")),
            "nan": sum(1 for s in objects if s.get("nan"))}


def lamic_summary(records: Iterable[dict]) -> dict:
    """The groups print_score prints: all, each bucket 2..6, "2-3" (fewer) and "4+" (more) (E3)."""
    recs = _scored(records)
    out = {"all": _lamic_block(recs)}
    for n in sorted({lamic_bucket(r["n_refs"]) for r in recs}):
        out[str(n)] = _lamic_block([r for r in recs if lamic_bucket(r["n_refs"]) == n])
    for name, buckets in LAMIC_GROUPS.items():
        out[name] = _lamic_block([r for r in recs if lamic_bucket(r["n_refs"]) in buckets])
    return out


def layoutsam_summary(records: Iterable[dict]) -> dict:
    """Yes counts / number of boxes per attribute (pooled over images); CLIP x100 and PickScore per image (E2)."""
    recs = _scored(records)
    boxes = [b for r in recs for b in r["regions"]]
    out = {k: 100 * _mean([b[k] for b in boxes]) for k in ("spatial", "colour", "texture", "shape")}
    clip = [r["clip"] for r in recs if r.get("clip") is not None]
    pick = [r["pick"] for r in recs if r.get("pick") is not None]
    out["CLIP"] = 100 * _mean(clip) if clip else None
    out["Pick"] = _mean(pick) if pick else None
    return {"all": {**out, "images": len(recs), "boxes": len(boxes)}}
