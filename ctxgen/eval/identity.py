"""Identity metrics for any ctxgen render (E4): DINO (ViT-S/16 CLS) and CLIP-I cosines per instance.

The render of scene S with seed N is `IMAGES/<S's out folder>/seed-N.png` (as `ctxgen render --out IMAGES`
writes it). The region is the instance's box (`box`) or the detector's box for its label nearest to it
(`grounded`); the reference side is the cut-out over white, cropped to its mask.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctxgen.eval.common import Job, State, each, pil_of
from ctxgen.eval.metrics import cosine
from ctxgen.vision.boxes import iou_many, round_crop_box

BACKBONES = {"dino": "embedder", "clip": "clip"}


@dataclass(frozen=True)
class IdentitySettings:
    backbones: tuple[str, ...] = ("dino", "clip")
    region: str = "box"  # or "grounded"


class IdentityEval:
    bench = "identity"

    def __init__(self, scenes: list[Path], images: Path, settings: IdentitySettings):
        from ctxgen.outputs.files import scene_out_dirs
        from ctxgen.scene.model import load_scene

        self.s, self.images = settings, Path(images)
        self.scenes = [load_scene(p) for p in scenes]
        self.dirs = scene_out_dirs([sc.source for sc in self.scenes], self.images)
        self.roles = tuple(BACKBONES[b] for b in settings.backbones) + (
            ("detector",) if settings.region == "grounded" else ())
        self._refs: dict[Path, list[np.ndarray]] = {}

    def options(self) -> dict:
        return {"backbones": list(self.s.backbones), "region": self.s.region}

    def jobs(self) -> list[Job]:
        from ctxgen.outputs.files import image_path

        out = []
        for sc in self.scenes:
            for k, seed in enumerate(sc.seeds):
                p = image_path(self.dirs[sc.source], seed)
                out.append(Job(sc.stem, seed, p if p.is_file() else None, sc.stem, sc))
        return out

    def fingerprint(self, job: Job) -> str:
        return hashlib.sha256(f"{job.case.digest}|{job.sample}".encode()).hexdigest()

    def new_record(self, job: Job) -> dict:
        return {"scene": job.case.stem, "seed": job.sample, "instances": []}

    def score(self, states: list[State], roles) -> None:
        det = roles.get("detector") if self.s.region == "grounded" else None
        each(states, lambda st: self._regions(st, det))
        for backbone in self.s.backbones:
            model = roles.get(BACKBONES[backbone])
            each(states, lambda st: self._compare(st, model, backbone))

    def _references(self, scene) -> list[np.ndarray]:
        from ctxgen.scene.images import read_references

        if scene.source not in self._refs:
            crops = []
            for ref in read_references(scene):
                fg = ref.mask >= 128
                ys, xs = np.nonzero(fg)
                over_white = np.where(fg[..., None], ref.rgb, np.uint8(255))  # (h, w, 3)
                crops.append(over_white[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
            self._refs[scene.source] = crops
        return self._refs[scene.source]

    def _regions(self, st: State, det) -> None:
        scene = st.job.case
        h, w = st.rgb.shape[:2]
        if (w, h) != tuple(scene.size):
            from ctxgen.core.errors import UserError

            raise UserError(f"{st.job.image} size: {w}x{h}, but {scene.display_path or scene.source} renders "
                            f"{scene.size[0]}x{scene.size[1]}; pass the folder `ctxgen render --out` wrote")
        for inst in scene.instances:
            box = np.asarray(inst.box, dtype=np.float64)
            rec = {"instance": inst.index, "label": inst.label, "region": "box"}
            if det is not None:
                found = det.detect(st.pil, inst.phrase or inst.label or "object", expected=box)
                if len(found):
                    box = found.boxes[int(iou_many(found.boxes, box).argmax())]
                    rec["region"] = "grounded"
                else:
                    rec["region"] = "box (nothing detected)"
            x1, y1, x2, y2 = round_crop_box(box, w, h)
            rec["box"] = [x1, y1, x2, y2]
            st.record["instances"].append(rec)

    def _compare(self, st: State, model, backbone: str) -> None:
        refs = self._references(st.job.case)
        crops = [pil_of(st.rgb[r["box"][1]:r["box"][3], r["box"][0]:r["box"][2]]) for r in st.record["instances"]]
        gen = model.embed(crops)
        ref = model.embed([pil_of(refs[r["instance"]]) for r in st.record["instances"]])
        for rec, g, r in zip(st.record["instances"], gen, ref):
            rec[backbone] = cosine(g, r)
