"""Stage `match` (last of the flexible path): each reference found in the composed scene and kept by identity (D4).

Per reference: Grounding DINO on the scene with its noun (box 0.3, text 0.25, by score), SAM 2.1 on each box, the
DINOv2 patch features of each crop averaged under its mask against those of the reference cut-out on white under
its mask; candidates under `candidate_similarity` (0.5) are dropped and the most similar kept. With the face
extra: the reference's largest face against the scene's faces (cosine of normalised embeddings); above
`face_found` (0.4) the most similar box containing that face wins (none: the instance is a face only), and the
aligned face crop is written. Then the D4 filter: overlaps removed, DINOv2 >= 0.82 or face >= 0.65, >= 2 kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ctxgen.dataset.construct.context import Context
from ctxgen.dataset.construct.detect import ground
from ctxgen.dataset.construct.faces import largest
from ctxgen.dataset.construct.filters import contains, masked_feature, match_keep
from ctxgen.vision.features import cosine
from ctxgen.dataset.construct.store import Done, Item, png, read_mask, read_rgb

UPSTREAM = "compose"


def _feature(emb: Any, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from PIL import Image

    return masked_feature(emb.patch_features(Image.fromarray(rgb)), mask)


def candidates(ctx: Context, scene: np.ndarray, phrase: str, ref_feat: np.ndarray) -> list[dict]:
    """Detections of `phrase` with their DINOv2 similarity to the reference, best first, weak ones dropped."""
    from PIL import Image

    cfg, emb = ctx.cfg.match, ctx.models.get("embedder")
    found = [d for d in ground(ctx.models.get("detector"), Image.fromarray(scene), phrase, cfg.box_threshold,
                               cfg.text_threshold, order="score") if d["box"][2] > d["box"][0]
             and d["box"][3] > d["box"][1]]
    if not found:
        return []
    masks, _ = ctx.models.get("segmenter").segment(scene, np.asarray([d["box"] for d in found], np.float64))
    out = []
    for d, mask in zip(found, masks):
        x1, y1, x2, y2 = d["box"]
        sim = cosine(_feature(emb, scene[y1:y2, x1:x2], mask[y1:y2, x1:x2]), ref_feat)
        if math.isfinite(sim) and sim >= cfg.candidate_similarity:
            out.append({"bbox": d["box"], "score": sim})
    return sorted(out, key=lambda c: -c["score"])


def face_match(ctx: Context, faces: Any, ref: np.ndarray, ref_mask: np.ndarray, scene: np.ndarray,
               cands: list[dict]) -> tuple[dict | None, dict | None, np.ndarray | None]:
    """(box after the face rule, face info, aligned RGBA face) for one reference with a face, else None values."""
    ref_face = largest(faces.find(ref))
    if ref_face is None:
        return (cands[0] if cands else None), None, None
    best = max(((f, float(f.embedding @ ref_face.embedding)) for f in faces.find(scene)), key=lambda t: t[1],
               default=(None, -1.0))
    if best[0] is None or best[1] <= ctx.cfg.match.face_found:
        return (cands[0] if cands else None), None, None
    holding = [c for c in cands if contains(c["bbox"], best[0].box)]
    box = max(holding, key=lambda c: c["score"]) if holding else None
    aligned = faces.align(ref, ref_mask, ref_face)
    on_white = (aligned[..., :3] * (aligned[..., 3:] / 255.0) + 255 * (1 - aligned[..., 3:] / 255.0)).astype(np.uint8)
    again = largest(faces.find(on_white))
    info = {"ref": [round(v) for v in ref_face.box], "target": [round(v) for v in best[0].box], "score": best[1],
            "aligned_face_bbox": [round(v) for v in again.box] if again is not None else None}
    return box, info, aligned


def run(ctx: Context, up: Done) -> Item:
    refs, prompt = ctx.done("references", up.id), ctx.done("prompts", up.id)
    scene = read_rgb(up.read("composite.png"), "composite.png")
    faces, emb = ctx.models.get("face"), ctx.models.get("embedder")
    boxes: list[dict | None] = []
    infos: list[dict | None] = []
    aligned: dict[int, np.ndarray] = {}
    for ref in refs.data["refs"]:
        k = ref["k"]
        if not ref["ok"]:
            boxes.append(None)
            infos.append(None)
            continue
        rgb, mask = read_rgb(refs.read(f"{k}.png"), f"{k}.png"), read_mask(refs.read(f"{k}_mask.png"), "mask")
        white = np.where(mask[..., None], rgb, 255).astype(np.uint8)  # (h, w, 3): the published `_masked` image
        cands = candidates(ctx, scene, prompt.data["instance"][k], _feature(emb, white, mask))
        box, info, face = (cands[0] if cands else None), None, None
        if faces is not None:
            box, info, face = face_match(ctx, faces, white, mask, scene, cands)
        boxes.append(box)
        infos.append(info)
        if face is not None:
            aligned[k] = face
    cfg = ctx.cfg.match
    keep, reason, boxes, infos = match_keep(boxes, infos, cfg.dino, cfg.face, cfg.box_overlap, cfg.face_overlap,
                                            cfg.min_instances)
    data = {"kept": keep, "boxes": boxes, "faces": infos}
    files = {f"{k}_face.png": png(aligned[k]) for k in keep if infos[k] is not None and k in aligned}
    if reason is not None:
        return Item(up.id, data, kept=False, reason=reason)
    from ctxgen.dataset.checks import check_record
    from ctxgen.dataset.construct.records import composite_record

    item = Item(up.id, data, files)
    problems = check_record(composite_record(ctx.run, ctx.cfg, up.id, pending=item), pixels=False)
    if problems:
        data["problems"] = [str(p) for p in problems]
        return Item(up.id, data, kept=False, reason=f"invalid-{problems[0].reason}")
    return item
