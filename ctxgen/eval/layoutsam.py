"""LayoutSAM-Eval (E2): per box, a VLM on the crop answers "present?" and, only if yes, colour / texture /
shape against the detailed description; CLIP and PickScore on the whole image.

Crops follow the published script: normalised boxes (3 decimals) times the image *width* on both axes,
truncated to integers. Images are `{index:04d}.jpg` or ctxgen renders of `prepare`'s scenes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctxgen.eval.cases import SamCase
from ctxgen.eval.common import Job, State, each, find_image, pil_of, require_square
from ctxgen.eval.metrics import cosine, parse_yes_anywhere

ROLES = ("vqa", "clip", "pick")
_ANSWER = 'Strictly answer with "Yes" or "No", without any irrelevant words.'
PRESENT = 'Is the subject "{d}" present in the image? ' + _ANSWER
ATTRIBUTE = ('Is the subject in "{d}" in the image consistent with the {a} described in the detailed description: '
             '"{detail}"? ' + _ANSWER + ' If the {a} is not mentioned in the detailed description, the answer is "Yes".')
ATTRIBUTES = (("colour", "color"), ("texture", "texture"), ("shape", "shape"))


@dataclass(frozen=True)
class SamSettings:
    clip: bool = True
    pick: bool = True


class LayoutSamEval:
    bench = "layoutsam"

    def __init__(self, cases: list[SamCase], images: Path, settings: SamSettings):
        self.cases, self.images, self.s = cases, Path(images), settings
        self.roles = ("vqa",) + (("clip",) if settings.clip else ()) + (("pick",) if settings.pick else ())

    def options(self) -> dict:
        return {"clip": self.s.clip, "pick": self.s.pick}

    def jobs(self) -> list[Job]:
        return [Job(f"{c.index:04d}", 0, find_image(self.images, [f"{c.index:04d}", f"layoutsam-{c.index:04d}/seed-42.png"]),
                    "all", c) for c in self.cases]

    def fingerprint(self, job: Job) -> str:
        return hashlib.sha256(repr(job.case).encode()).hexdigest()

    def new_record(self, job: Job) -> dict:
        return {"index": job.case.index, "regions": []}

    def score(self, states: list[State], roles) -> None:
        each(states, lambda st: require_square(st.rgb, st.job.image, "LayoutSAM-Eval"))
        vqa = roles.get("vqa")
        each(states, lambda st: self._regions(st, vqa))
        if self.s.clip:
            clip = roles.get("clip")
            each(states, lambda st: st.record.__setitem__("clip", _cos(clip, st, 1.0)))
        if self.s.pick:
            pick = roles.get("pick")
            each(states, lambda st: st.record.__setitem__("pick", _cos(pick, st, pick.logit_scale)))

    def _regions(self, st: State, vqa) -> None:
        res = st.rgb.shape[1]
        for region in st.job.case.regions:
            x1, y1, x2, y2 = (int(v * res) for v in region.bbox)
            crop = pil_of(st.rgb[max(y1, 0):y2, max(x1, 0):x2]) if x2 > x1 and y2 > y1 else pil_of(st.rgb[:1, :1])
            d, detail = region.caption.replace("/", ""), region.detail.replace("/", "")
            key = st.job.image.name
            rec = {"caption": region.caption, "spatial": parse_yes_anywhere(vqa.ask(crop, PRESENT.format(d=d), key=key))}
            for name, word in ATTRIBUTES:
                rec[name] = parse_yes_anywhere(vqa.ask(crop, ATTRIBUTE.format(d=d, a=word, detail=detail), key=key)) \
                    if rec["spatial"] == 1.0 else 0.0
            st.record["regions"].append(rec)


def _cos(model, st: State, scale: float) -> float:
    """scale * cos(image embedding, caption embedding) (CLIP: scale 1, x100 in the table; PickScore: logit scale)."""
    img = model.embed([st.pil])[0]
    txt = model.embed_text([st.job.case.caption])[0]
    return float(scale * cosine(np.asarray(img), np.asarray(txt)))
