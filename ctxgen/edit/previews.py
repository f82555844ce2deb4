"""Layout previews for the editor: the same stages as `ctxgen layout` (references, composition, preview
picture, CLA/ICA mask map), cached by what they depend on, so an edit that moves a box re-reads no image.
Torch-free.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ctxgen.core.fsio import png_bytes
from ctxgen.layout.compose import Composition, PreparedRef, build_composition, layout_to_pil, prepare_reference
from ctxgen.scene.images import RefImage, read_references, read_user_layout
from ctxgen.scene.model import Instance, Scene
from ctxgen.edit.files import file_stamp

Segmenter = Callable[[np.ndarray, Instance], np.ndarray]


class MasksNeeded(Exception):
    """A `mask: auto` reference whose SAM mask is not computed yet (the editor runs SAM as a job first)."""

    def __init__(self, index: int):
        self.index = index
        super().__init__(f"instances[{index}]: the SAM mask is not computed yet")


@dataclass
class Preview:
    """One computed layout: the composition, its encoded layout image, and pictures made on demand."""

    key: str
    scene: Scene
    refs: tuple[RefImage, ...]
    composition: Composition
    layout_jpeg: bytes
    seconds: float
    extra: dict[str, bytes] = field(default_factory=dict)  # "preview", "masks": PNG bytes, made once
    lock: threading.Lock = field(default_factory=threading.Lock)

    def info(self) -> dict[str, Any]:
        """What the page draws over the composite: boxes, token boxes, layer order, reference token grids."""
        comp = self.composition
        refs = [{"index": r.index, "size": list(r.size), "grid": list(r.grid), "fg": int(r.token_mask.sum())}
                for r in comp.refs]
        return {"key": self.key, "size": list(comp.size), "base": comp.base, "order": list(comp.order),
                "boxes": [list(b) for b in comp.boxes], "token_boxes": [list(b) for b in comp.token_boxes],
                "refs": refs, "ms": round(self.seconds * 1000, 1)}


def refs_key(scene: Scene) -> str:
    """What read_references returns depends on: files, mask modes and SAM prompts, per instance."""
    parts = [(i.index, file_stamp(i.image), i.mask_mode, file_stamp(i.mask), i.point, i.prompt_box) for i in scene.instances]
    return hashlib.sha256(repr((parts, file_stamp(scene.layout))).encode()).hexdigest()


def layout_key(scene: Scene) -> str:
    """Everything the composition and the preview picture read from a scene (R4-R12), as one hash."""
    insts = [(i.index, i.box, i.placement_box, i.fit, i.z, i.label, i.image.name) for i in scene.instances]
    doc = (refs_key(scene), scene.size, scene.seeds[0], scene.stem, scene.ica, scene.prompt, insts)
    return hashlib.sha256(repr(doc).encode()).hexdigest()[:24]


class _Lru(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)

    def hit(self, key: str) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None


class _Prepared:
    """`prepare_reference` (R5-R7) memoised per reference object and base size; the reference is kept with its
    result, so its id cannot be reused while the entry lives."""

    def __init__(self, size: int = 64):
        self._memo = _Lru(size)

    def __call__(self, ref: RefImage, base: int) -> tuple[PreparedRef, np.ndarray]:
        key = f"{id(ref)}:{base}"
        hit = self._memo.hit(key)
        if hit is None or hit[0] is not ref:
            hit = (ref, prepare_reference(ref, base))
            self._memo.put(key, hit)
        return hit[1]


class Previews:
    """Computes and caches previews; `segmenter(scene)` gives the mask source for `mask: auto` references."""

    def __init__(self, segmenter: Callable[[Scene], Segmenter | None], text_len: int):
        self.segmenter = segmenter
        self.text_len = text_len
        self._lock = threading.Lock()
        self._refs = _Lru(4)
        self._previews = _Lru(16)
        self._prepared = _Prepared()

    def compute(self, scene: Scene) -> Preview:
        """The preview of a checked scene (cached); MasksNeeded when a SAM mask must be computed first."""
        key = layout_key(scene)
        with self._lock:
            found = self._previews.hit(key)
            if found is not None:
                return found
            t0 = time.perf_counter()
            refs, user_layout = self._references(scene)
            comp = build_composition(scene, refs, user_layout, prepare=self._prepared)
            buf = io.BytesIO()
            layout_to_pil(comp).save(buf, format="JPEG", quality=92)
            preview = Preview(key, scene, refs, comp, buf.getvalue(), time.perf_counter() - t0)
            self._previews.put(key, preview)
            return preview

    def get(self, key: str) -> Preview | None:
        with self._lock:
            return self._previews.hit(key)

    def picture(self, preview: Preview, kind: str) -> bytes:
        """`preview`: the `ctxgen layout --preview` picture; `masks`: the CLA/ICA mask map (made once each)."""
        with preview.lock:
            if kind not in preview.extra:
                preview.extra[kind] = png_bytes(self._draw(preview, kind), compress_level=1)
            return preview.extra[kind]

    def reference(self, scene: Scene, index: int) -> RefImage | None:
        """The reference as last read for this scene's files (None when it was not read yet)."""
        with self._lock:
            found = self._refs.hit(refs_key(scene))
        return None if found is None else found[0][index]

    def _draw(self, preview: Preview, kind: str) -> Image.Image:
        if kind == "preview":
            from ctxgen.layout.preview import render_preview

            return render_preview(preview.composition, preview.scene)
        from ctxgen.outputs.overlays import mask_maps
        from ctxgen.sequence.prepare import prepare_scene

        sp = prepare_scene(preview.scene, self.text_len, self.segmenter(preview.scene))
        return mask_maps(sp)

    def _references(self, scene: Scene) -> tuple[tuple[RefImage, ...], np.ndarray | None]:
        key = refs_key(scene)
        found = self._refs.hit(key)
        if found is None:
            refs = read_references(scene, segmenter=self.segmenter(scene))
            found = (tuple(refs), read_user_layout(scene))
            self._refs.put(key, found)
        return found
