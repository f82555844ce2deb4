"""The D3/D4 selection rules as pure functions, each rejection with its reason. Torch-free.

Boxes are pixel xyxy. Where the published code (IMIG-Source) fixes an arithmetic detail, it is kept and named:
integer boxes from Grounding DINO's normalised centre boxes, a mask's tight box measured last-index minus
first-index, greedy NMS on score order stopping at the box limit, the composite filter's pairwise overlap removal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ctxgen.vision.boxes import area, iou_many, nms
from ctxgen.vision.features import masked_mean, resize_nearest

Box = tuple[float, float, float, float]


def integer_box(box: Sequence[float], w: int, h: int) -> tuple[int, int, int, int]:
    """A float pixel box -> the published integer box: centre and size rounded, centre kept inside, corners clamped."""
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = round(x2 - x1), round(y2 - y1)
    cx = min(max(round((x1 + x2) / 2), bw / 2), w - bw / 2)
    cy = min(max(round((y1 + y2) / 2), bh / 2), h - bh / 2)
    left, top = round(cx - bw / 2), round(cy - bh / 2)
    clamp = lambda v, hi: int(min(max(v, 0), hi))  # noqa: E731
    return clamp(left, w - 1), clamp(top, h - 1), clamp(left + bw, w - 1), clamp(top + bh, h - 1)


def is_tiny(box: Sequence[float], w: int, h: int, min_side: float, min_area: float) -> bool:
    """D3 tiny-box rule: (width or height under `min_side` of the side) and area under `min_area` of the image."""
    fw, fh = (box[2] - box[0]) / w, (box[3] - box[1]) / h
    return (fw < min_side or fh < min_side) and fw * fh < min_area


def select_boxes(boxes: np.ndarray, scores: np.ndarray, w: int, h: int, min_side: float, min_area: float,
                 nms_iou: float, max_boxes: int) -> tuple[list[int], dict[str, int]]:
    """D3 step 3: drop tiny boxes, greedy NMS (IoU > `nms_iou` suppressed), at most `max_boxes`; (kept, drop counts)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    big = [i for i in range(len(boxes)) if not is_tiny(boxes[i], w, h, min_side, min_area)]
    dropped = {"tiny-box": len(boxes) - len(big)}
    kept = [big[i] for i in nms(boxes[big], scores[big], nms_iou)] if big else []
    dropped["nms"] = len(big) - len(kept)
    dropped["over-max-boxes"] = max(0, len(kept) - max_boxes)
    return kept[:max_boxes], {k: v for k, v in dropped.items() if v}


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The tight box of a boolean mask as (first col, first row, last col, last row); None when empty."""
    m = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def fit_ratio(mask: np.ndarray, box: Sequence[float]) -> float:
    """D3 mask-to-box fit: min over width and height of (tight mask box side / box side); 0 for an empty mask."""
    tight = mask_box(mask)
    bw, bh = box[2] - box[0], box[3] - box[1]
    if tight is None or bw <= 0 or bh <= 0:
        return 0.0
    return min((tight[2] - tight[0]) / bw, (tight[3] - tight[1]) / bh)


@dataclass(frozen=True)
class Candidate:
    """One detected instance as the D3 filter sees it: its box, its crop's mask, the repaint's mask and valid_box."""

    box: Box
    mask: np.ndarray | None
    repaint_mask: np.ndarray | None = None
    valid_box: Box | None = None


def instance_reason(c: Candidate, min_fit: float) -> str | None:
    """Why one instance fails the D3 mask rules (None: it passes)."""
    if c.mask is None or mask_box(c.mask) is None:
        return "empty-mask"
    if c.repaint_mask is not None and mask_box(c.repaint_mask) is None:
        return "empty-repaint-mask"
    if fit_ratio(c.mask, c.box) < min_fit:
        return "mask-fit"
    if c.repaint_mask is not None and c.valid_box is not None and fit_ratio(c.repaint_mask, c.valid_box) < min_fit:
        return "repaint-mask-fit"
    return None


def filter_scene(cands: Sequence[Candidate], w: int, h: int, min_instances: int, max_instances: int,
                 min_area: float, min_fit: float) -> tuple[list[int], dict[int, str], str | None]:
    """D3 step 8 in the published order: count, area, mask fit, count, the largest `max_instances`.

    Returns (kept indices, largest first; {index: reason} for dropped instances; the scene's rejection or None).
    """
    reasons: dict[int, str] = {}
    if len(cands) < min_instances:
        return [], reasons, "too-few-instances"
    alive = []
    for i, c in enumerate(cands):
        if area(np.asarray(c.box))[0] < min_area * w * h:
            reasons[i] = "small-area"
        else:
            alive.append(i)
    if len(alive) < min_instances:
        return [], reasons, "too-few-instances"
    for i in list(alive):
        why = instance_reason(cands[i], min_fit)
        if why is not None:
            reasons[i] = why
            alive.remove(i)
    if len(alive) < min_instances:
        return [], reasons, "too-few-instances"
    alive.sort(key=lambda i: -area(np.asarray(cands[i].box))[0])  # stable: ties keep detection order
    for i in alive[max_instances:]:
        reasons[i] = "over-max-instances"
    return alive[:max_instances], reasons, None


def _is_human(noun: str, words: frozenset[str]) -> bool:
    for word in noun.lower().replace("-", " ").split():
        if word in words or word.rstrip("s") in words or (word.endswith("es") and word[:-2] in words):
            return True
    return False


def prompt_reason(entry: dict, min_nouns: int, min_humans: int, human_words: Sequence[str],
                  flexible: bool = False) -> str | None:
    """Why a prompt entry breaks the D3/D4 prompt rules (None: it passes); nouns must be named in the prompt."""
    prompt = entry.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "no-prompt"
    key = "instance" if flexible else "nouns"
    nouns = entry.get(key)
    if not isinstance(nouns, list) or not nouns or not all(isinstance(n, str) and n.strip() for n in nouns):
        return "no-nouns"
    if flexible:
        refs = entry.get("instance_prompt")
        if not isinstance(refs, list) or len(refs) != len(nouns) or not all(isinstance(r, str) and r for r in refs):
            return "instance-prompt-mismatch"
    if len(nouns) < min_nouns:
        return "too-few-instances"
    if sum(_is_human(n, frozenset(human_words)) for n in nouns) < min_humans:
        return "too-few-humans"
    return None


def repaint_size(bw: float, bh: float, max_area: int) -> tuple[int, int]:
    """D3 step 5: the crop's aspect at `max_area` pixels, each side floored to a multiple of 16 (at least 16)."""
    aspect = bw / bh
    width, height = round((max_area * aspect) ** 0.5), round((max_area / aspect) ** 0.5)
    return max(16, width // 16 * 16), max(16, height // 16 * 16)


def instruction(phrase: str, prefix: str, suffix: str) -> str:
    """The repaint instruction: keep only the subject, then the weighted edit (D3 step 5)."""
    subject = phrase if phrase.lower().startswith("the ") else f"the {phrase}"
    head = f"Keep only {subject} and remove any other objects."
    return f"{head} {prefix} {subject}." if not suffix else f"{head} {prefix} {subject} {suffix}".strip()


def choose_edit(u: float, v: float, edits: Sequence[dict]) -> tuple[str, str]:
    """The edit drawn by two uniforms in [0, 1): `u` picks by weight, `v` picks a suffix (if any)."""
    weights = np.asarray([float(e["weight"]) for e in edits])
    cum = np.cumsum(weights / weights.sum())
    edit = edits[min(int(np.searchsorted(cum, u, side="right")), len(edits) - 1)]
    suffixes = edit.get("suffixes") or []
    return edit["prefix"], (suffixes[min(int(v * len(suffixes)), len(suffixes) - 1)] if suffixes else "")


def grid_mask(mask: np.ndarray, side: int) -> np.ndarray:
    """bool (side, side): a mask put on the patch grid as OpenCV's INTER_NEAREST does (D4)."""
    return resize_nearest(np.asarray(mask), side, side) != 0


def masked_feature(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of (P, D) patch features under a mask resized onto the sqrt(P) grid; NaN when nothing is covered."""
    side = int(round(len(features) ** 0.5))
    return masked_mean(features, grid_mask(mask, side).reshape(-1))


def contains(outer: Sequence[float], inner: Sequence[float]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def drop_overlaps(entries: list[dict | None], box_key: str, iou: float) -> list[dict | None]:
    """D4: for each pair i < j (in order) whose boxes overlap above `iou`, the lower score becomes None."""
    out = list(entries)
    for i in range(len(out)):
        for j in range(i + 1, len(out)):
            if out[i] is None or out[j] is None:
                continue
            if iou_many(np.asarray(out[j][box_key]), np.asarray(out[i][box_key]))[0] > iou:
                if out[i]["score"] >= out[j]["score"]:
                    out[j] = None
                else:
                    out[i] = None
    return out


def match_keep(boxes: list[dict | None], faces: list[dict | None], dino: float, face: float, box_overlap: float,
               face_overlap: float, min_instances: int) -> tuple[list[int], str | None, list[dict | None],
                                                                 list[dict | None]]:
    """D4 filter: overlaps removed, then instances with DINOv2 score >= `dino` or an aligned face >= `face`.

    Returns (kept reference indices, the scene's rejection or None, boxes and faces after overlap removal).
    """
    boxes = drop_overlaps(boxes, "bbox", box_overlap)
    faces = drop_overlaps(faces, "target", face_overlap)
    if sum(b is not None or f is not None for b, f in zip(boxes, faces)) < min_instances:
        return [], "too-few-matches", boxes, faces
    keep = [i for i, (b, f) in enumerate(zip(boxes, faces))
            if (b is not None and b["score"] >= dino)
            or (f is not None and f["score"] >= face and f.get("aligned_face_bbox") is not None)]
    if len(keep) < min_instances:
        return [], "low-identity", boxes, faces
    return keep, None, boxes, faces
