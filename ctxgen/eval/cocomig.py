"""COCO-MIG (E1): per instance position (Grounding DINO IoU >= 0.5) then colour (SAM mask in the HSV range);
SR, I-SR and mIoU per level; G-C and L-C with CLIP.

The published script reads images with OpenCV (BGR), resizes to 512x512 when the height is not 512, and hands
the BGR array to CLIP as if it were RGB; `variant: corrected` gives CLIP the RGB image instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctxgen.eval.cases import MigCase
from ctxgen.eval.masks import encode as encode_mask
from ctxgen.eval.common import Job, State, each, find_image, pil_of, require_square
from ctxgen.eval.metrics import COLOUR_RANGES, LEGACY_COLOUR_RANGES, colour_fraction, resize_linear
from ctxgen.eval.templates import IMAGENET_TEMPLATES
from ctxgen.vision.boxes import iou_many, nms

SIZE = 512
BOX_THRESHOLD = TEXT_THRESHOLD = 0.25
NMS_THRESHOLD = 0.8
IOU_THRESHOLD = 0.5
COLOUR_SHARE = 0.2
ROLES = ("detector", "segmenter", "clip")


@dataclass(frozen=True)
class MigSettings:
    variant: str = "published"  # or "corrected": CLIP sees RGB
    colours: str = "published"  # or "legacy": the commented-out table quoted in E1
    clip: bool = True  # G-C and L-C


class CocoMigEval:
    bench = "cocomig"

    def __init__(self, cases: list[MigCase], images: Path, settings: MigSettings):
        self.cases, self.images, self.s = cases, Path(images), settings
        self.roles = ROLES if settings.clip else ROLES[:2]
        self.ranges = LEGACY_COLOUR_RANGES if settings.colours == "legacy" else COLOUR_RANGES

    def options(self) -> dict:
        return {"variant": self.s.variant, "colours": self.s.colours, "clip": self.s.clip}

    def jobs(self) -> list[Job]:
        out = []
        for case in self.cases:
            names = [case.key, f"{int(case.key):04d}" if case.key.isdigit() else case.key,
                     f"cocomig-{case.key.zfill(4)}/seed-42.png"]
            path = find_image(self.images, names) or _mig_named(self.images, case.key)
            out.append(Job(case.key, 0, path, f"L{len(case.instances)}", case))
        return out

    def fingerprint(self, job: Job) -> str:
        return hashlib.sha256(repr(job.case).encode()).hexdigest()

    def new_record(self, job: Job) -> dict:
        return {"key": job.case.key, "level": len(job.case.instances), "instances": []}

    def score(self, states: list[State], roles) -> None:
        each(states, self._prepare)
        det, seg = roles.get("detector"), roles.get("segmenter")
        each(states, lambda st: self._positions(st, det))
        each(states, lambda st: self._colours(st, seg))
        if self.s.clip:
            clip = roles.get("clip")
            each(states, lambda st: self._clip(st, clip))

    def _prepare(self, st: State) -> None:
        """The 512x512 BGR image the published script works on (OpenCV's bilinear resize when needed)."""
        require_square(st.rgb, st.job.image, "COCO-MIG")
        bgr = st.rgb[..., ::-1]
        if bgr.shape[0] != SIZE:
            bgr = resize_linear(bgr, SIZE, SIZE)
        st.scratch["bgr"] = np.ascontiguousarray(bgr)
        st.scratch["rgb512"] = np.ascontiguousarray(bgr[..., ::-1])

    def _positions(self, st: State, det) -> None:
        image = pil_of(st.scratch["rgb512"])
        for inst in st.job.case.instances:
            gt = np.asarray(inst.bbox) * SIZE
            found = det.detect(image, inst.noun, BOX_THRESHOLD, TEXT_THRESHOLD, expected=gt)
            boxes = found.boxes[nms(found.boxes, found.scores, NMS_THRESHOLD)] if len(found) else found.boxes
            ious = iou_many(boxes, gt) if len(boxes) else np.zeros(0)
            best = float(ious.max()) if len(ious) else 0.0
            rec = {"label": inst.label, "iou": best, "gt": [float(v) for v in gt], "detections": int(len(boxes)),
                   "box": [float(v) for v in boxes[int(ious.argmax())]] if len(ious) else None,
                   "position": best >= IOU_THRESHOLD}
            rec.update(success=False, miou=best)  # a wrong position contributes its IoU (E1)
            st.record["instances"].append(rec)

    def _colours(self, st: State, seg) -> None:
        for inst, rec in zip(st.job.case.instances, st.record["instances"]):
            if not rec["position"]:
                continue
            gt = np.asarray(inst.bbox) * SIZE
            masks, _ = seg.segment(st.scratch["rgb512"], gt[None], multimask=True)  # prompt: the GT box (E1)
            share = colour_fraction(st.scratch["bgr"], masks[0], self.ranges[inst.colour])
            ok = bool(masks[0].any()) and share >= COLOUR_SHARE
            rec.update(colour_share=share, mask_px=int(masks[0].sum()), mask=encode_mask(masks[0]), success=ok,
                       miou=rec["iou"] if ok else 0.0)  # the wrong colour contributes 0 (E1)

    def _clip(self, st: State, clip) -> None:
        """G-C on the image and caption; L-C on each box crop resized to 512 with the 80 templates (E1)."""
        pixels = st.scratch["rgb512"] if self.s.variant == "corrected" else st.scratch["bgr"]
        st.record["gc"] = _mean_logit(clip, pixels, [st.job.case.caption])
        for inst, rec in zip(st.job.case.instances, st.record["instances"]):
            x1, y1, x2, y2 = (int(SIZE * v) for v in inst.bbox)
            crop = pixels[y1:y2, x1:x2]
            if crop.size == 0:
                rec["lc"] = None
                continue
            crop = resize_linear(crop, SIZE, SIZE)
            rec["lc"] = _mean_logit(clip, crop, [t.format(inst.label) for t in IMAGENET_TEMPLATES])


def _mean_logit(clip, pixels: np.ndarray, texts: list[str]) -> float:
    """mean over texts of `logits_per_image` = exp(logit_scale) * cos(image, text) (E1)."""
    img = clip.embed([pil_of(pixels)])[0]
    txt = clip.embed_text(texts)
    img = img / max(float(np.linalg.norm(img)), 1e-12)
    txt = txt / np.maximum(np.linalg.norm(txt, axis=1, keepdims=True), 1e-12)
    return float(clip.logit_scale * (txt @ img).mean())


def _mig_named(folder: Path, key: str) -> Path | None:
    """MIG_Bench's own naming: any `*_<key>.png|jpg` in the folder."""
    if not folder.is_dir():
        return None
    for p in sorted(folder.glob(f"*_{key}.*")):
        if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            return p
    return None
