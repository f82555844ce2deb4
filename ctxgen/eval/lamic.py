"""LAMICBench++ (E3): IDS per face reference, IPS per object reference, AES and ITC per image.

Images are `{index:04d}_{sample}.jpg` (the published layout) or ctxgen renders of `prepare`'s scenes
(`lamic-{index:04d}/seed-{seed}.png`). The published arithmetic is kept under the benchmark's name; the
`corrected` variant aligns the mask grid with the processor's resize and centre crop.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctxgen.core.errors import UserError
from ctxgen.eval.aggregate import lamic_bucket
from ctxgen.eval.cases import LamicCase, LamicRef
from ctxgen.eval.masks import encode as encode_mask
from ctxgen.eval.common import Job, State, each, find_image, open_rgb, pil_of
from ctxgen.eval.metrics import cosine, finite_or_zero, masked_mean, parse_itc, resize_nearest
from ctxgen.vision.boxes import round_crop_box

BOX_THRESHOLD, TEXT_THRESHOLD = 0.35, 0.25
SEEDS = (42, 43, 44, 45)
ITC_PROMPT = "Based on the image, answer my question with only one word 'yes' or 'no'. Question: {}"
ROLES = ("detector", "segmenter", "embedder", "face", "aesthetic", "vqa")


@dataclass(frozen=True)
class LamicSettings:
    refs: Path  # reference_images/
    masks: Path  # reference_masks/
    samples: int = 4
    seeds: tuple[int, ...] = SEEDS
    variant: str = "published"  # or "corrected": mask grid aligned with resize + centre crop


class LamicEval:
    bench = "lamic"
    roles = ROLES

    def __init__(self, cases: list[LamicCase], images: Path, settings: LamicSettings):
        self.cases, self.images, self.s = cases, Path(images), settings
        self._refs: dict[tuple[str, str], object] = {}

    def options(self) -> dict:
        return {"variant": self.s.variant, "refs": str(self.s.refs.resolve()), "masks": str(self.s.masks.resolve())}

    def jobs(self) -> list[Job]:
        out = []
        for case in self.cases:
            for k in range(self.s.samples):
                seed = self.s.seeds[k] if k < len(self.s.seeds) else None
                names = [f"{case.index:04d}_{k}"] + ([f"lamic-{case.index:04d}/seed-{seed}.png"] if seed else [])
                group = "2-3" if lamic_bucket(len(case.refs)) <= 3 else "4+"
                out.append(Job(f"{case.index:04d}", k, find_image(self.images, names), group, case))
        return out

    def fingerprint(self, job: Job) -> str:
        case: LamicCase = job.case
        digests = [self._file_digest(self.s.refs / r.image_path) for r in case.refs]
        return hashlib.sha256(json.dumps([repr(case), digests]).encode()).hexdigest()

    @staticmethod
    def _file_digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"

    def new_record(self, job: Job) -> dict:
        return {"index": job.case.index, "sample": job.sample, "n_refs": len(job.case.refs), "ids": [], "ips": []}

    def score(self, states: list[State], roles) -> None:
        """Role by role over the chunk: faces, detection + segmentation + DINO, aesthetic, VQA (E3)."""
        if any(r.is_face for st in states for r in st.job.case.refs):
            face = roles.get("face")
            each(states, lambda st: self._faces(st, face))
        if any(not r.is_face for st in states for r in st.job.case.refs):
            det, seg, emb = roles.get("detector"), roles.get("segmenter"), roles.get("embedder")
            each(states, lambda st: self._objects(st, det, seg, emb))
        aes = roles.get("aesthetic")
        each(states, lambda st: st.record.__setitem__("aes", float(aes.score([st.pil])[0])))
        if any(st.job.case.questions for st in states):
            vqa = roles.get("vqa")
            each(states, lambda st: self._itc(st, vqa))

    def _ref_rgb(self, ref: LamicRef) -> np.ndarray:
        path = self.s.refs / ref.image_path
        if not path.is_file():
            raise UserError(f"{path}: reference image not found; pass --refs (the benchmark's reference_images/)")
        return open_rgb(path)

    def _faces(self, st: State, face) -> None:
        gen = None
        for ref in (r for r in st.job.case.refs if r.is_face):
            key = ("face", ref.image_path)
            if key not in self._refs:
                found = face.faces(self._ref_rgb(ref))
                self._refs[key] = found[0] if found else None
            ref_emb = self._refs[key]
            if ref_emb is None:  # no face in the reference: scored 0, counted (E3)
                st.record["ids"].append({"ref": ref.ref_index, "score": 0.0, "no_ref_face": True,
                                         "ref_image": str(self.s.refs / ref.image_path)})
                continue
            gen = face.faces(st.rgb) if gen is None else gen
            sims = [cosine(ref_emb, g) for g in gen]
            st.record["ids"].append({"ref": ref.ref_index, "score": max(sims) if sims else 0.0,
                                     "faces": len(gen), "ref_image": str(self.s.refs / ref.image_path)})

    def _ref_feature(self, ref: LamicRef, emb) -> np.ndarray:
        key = ("dino", ref.image_path)
        if key not in self._refs:
            mpath = self.s.masks / ref.mask_path
            if not mpath.is_file():
                raise UserError(f"{mpath}: reference mask not found; pass --masks (the benchmark's reference_masks/)")
            mask = open_rgb(mpath)[..., 0] > 127
            if not mask.any():
                raise UserError(f"{mpath}: reference mask is empty (no pixel > 127)")
            self._refs[key] = self._masked_feature(pil_of(self._ref_rgb(ref)), mask, emb)
        return self._refs[key]

    def _objects(self, st: State, det, seg, emb) -> None:
        h, w = st.rgb.shape[:2]
        for ref in (r for r in st.job.case.refs if not r.is_face):
            expected = None if ref.bbox is None else np.asarray(ref.bbox) * [w, h, w, h]
            found = det.detect(st.pil, ref.phrase, BOX_THRESHOLD, TEXT_THRESHOLD, expected=expected)
            entry = {"ref": ref.ref_index, "phrase": ref.phrase, "ref_image": str(self.s.refs / ref.image_path)}
            if len(found) == 0:  # nothing detected: IPS 0, counted (E3)
                st.record["ips"].append({**entry, "score": 0.0, "no_detection": True})
                continue
            masks, _ = seg.segment(st.rgb, found.boxes, multimask=False)
            x1, y1, x2, y2 = round_crop_box(found.boxes[0], w, h)
            entry["box"] = [float(v) for v in found.boxes[0]]
            if x2 <= x1 or y2 <= y1:
                st.record["ips"].append({**entry, "score": 0.0, "zero_crop": True})
                continue
            crop_mask = masks[0][y1:y2, x1:x2]
            if not crop_mask.any():
                crop_mask = np.ones_like(crop_mask)
            gen_f = self._masked_feature(pil_of(st.rgb[y1:y2, x1:x2]), crop_mask, emb)
            score, nan = finite_or_zero(cosine(gen_f, self._ref_feature(ref, emb)))
            st.record["ips"].append({**entry, "score": score, **({"nan": True} if nan else {}),
                                     "mask_px": int(masks[0].sum()), "mask": encode_mask(masks[0])})

    def _masked_feature(self, image, mask: np.ndarray, emb) -> np.ndarray:
        """DINOv2 patch tokens averaged under the mask resized (nearest, top-left) onto the patch grid (E3)."""
        feats = emb.patch_features(image)  # (P, D)
        side = int(round(len(feats) ** 0.5))
        if self.s.variant == "corrected":
            mask = _processor_geometry(mask, emb)
        grid = resize_nearest(mask.astype(np.float32), side, side) != 0  # (side, side)
        return masked_mean(feats, grid.reshape(-1))

    def _itc(self, st: State, vqa) -> None:
        answers = [parse_itc(vqa.ask(st.pil, ITC_PROMPT.format(q), key=st.job.image.name))
                   for _, q in st.job.case.questions]
        st.record["itc"] = sum(answers) / len(answers)
        st.record["answers"] = answers


def _processor_geometry(mask: np.ndarray, emb) -> np.ndarray:
    """The mask through the processor's shortest-edge resize (nearest) and centre crop (the aligned variant)."""
    from PIL import Image

    proc = getattr(emb.processor, "image_processor", emb.processor)
    short = (getattr(proc, "size", None) or {}).get("shortest_edge")
    crop = getattr(proc, "crop_size", None) or {}
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    if short:
        w, h = img.size
        scale = short / min(w, h)
        img = img.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.NEAREST)
    if crop.get("height") and crop.get("width"):
        w, h = img.size
        left, top = (w - crop["width"]) // 2, (h - crop["height"]) // 2
        img = img.crop((left, top, left + crop["width"], top + crop["height"]))
    return np.asarray(img) > 127
