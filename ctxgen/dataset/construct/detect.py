"""Stage `detect`: Grounding DINO on the scene with its nouns, then the tiny-box rule, NMS and the box limit
(D3 step 3)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ctxgen.dataset.construct.context import Context
from ctxgen.dataset.construct.filters import integer_box, select_boxes
from ctxgen.dataset.construct.store import Done, Item, read_rgb

UPSTREAM = "t2i"


SPECIAL = re.compile(r"\[(UNK|SEP|CLS|PAD|MASK)\]|##")


def phrase_of(label: str, phrases: str | Sequence[str]) -> str:
    """The detector's matched text span, cleaned of special tokens; the best-overlapping query phrase if empty."""
    text = " ".join(SPECIAL.sub(" ", label).split()).strip(" .")
    if text:
        return text
    queries = [phrases] if isinstance(phrases, str) else list(phrases)
    words = set(label.lower().split())
    return max(queries, key=lambda q: len(words & set(q.lower().split())))


def ground(detector: Any, image: Any, phrases: str | Sequence[str], box_threshold: float, text_threshold: float,
           order: str = "query") -> list[dict]:
    """Detections as [{box (published integer box), score, phrase}], in query order or by score (`order="score"`)."""
    found = detector.detect(image, phrases, box_threshold, text_threshold)
    w, h = image.size
    out = [{"box": list(integer_box(b, w, h)), "score": float(s), "phrase": phrase_of(str(p), phrases)}
           for b, s, p in zip(found.boxes, found.scores, found.labels)]
    if order == "score":
        out.sort(key=lambda d: -d["score"])
    return out


def run(ctx: Context, up: Done) -> Item:
    from PIL import Image

    cfg = ctx.cfg.detect
    prompt = ctx.done("prompts", up.id)
    image = Image.fromarray(read_rgb(up.read("image.png"), "image.png"))
    found = ground(ctx.models.get("detector"), image, prompt.data["nouns"], cfg.box_threshold, cfg.text_threshold)
    w, h = image.size
    boxes = np.asarray([d["box"] for d in found], dtype=np.float64).reshape(-1, 4)
    scores = np.asarray([d["score"] for d in found])
    kept, dropped = select_boxes(boxes, scores, w, h, cfg.min_side, cfg.min_area, cfg.nms_iou, cfg.max_boxes)
    instances = [found[i] for i in kept]
    data = {"instances": instances, "dropped": dropped, "found": len(found), "size": [w, h]}
    return Item(up.id, data, kept=bool(instances), reason=None if instances else "no-detection")
