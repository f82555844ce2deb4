"""`mask: auto` in the editor (R2): SAM 2.1 runs as a job that fills the same mask cache renders read
(`<out>/.cache/masks`); previews only read that cache, so they never wait for a model.

The SAM model loads once per server, on the first job. The prompt is the instance's own `point:` /
`prompt_box:` (set by clicking or dragging on the reference in the page), so a render computes the same mask.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ctxgen.edit.jobs import Job
from ctxgen.edit.previews import MasksNeeded, Segmenter
from ctxgen.scene.images import read_image_rgb
from ctxgen.scene.model import Instance, Scene


class Masks:
    """The SAM side of the editor: cache-only segmenters for previews, and the job that computes masks."""

    def __init__(self, sam_model: str, device: str, cache_root: Path):
        from ctxgen.models.sam import MaskCache, sam_model_id

        self.sam_model = sam_model
        self.device = device
        self.ident = sam_model_id(sam_model)  # a bad --sam-model fails at start, not on the first click
        self.cache = MaskCache(cache_root)
        self.cache_root = cache_root
        self._model: Any = None
        self._lock = threading.Lock()

    def key(self, rgb: np.ndarray, inst: Instance) -> str:
        from ctxgen.models.sam import mask_key

        return mask_key(rgb, inst.point, inst.prompt_box, self.ident)

    def cached(self, scene: Scene) -> Segmenter | None:
        """For previews: masks from the cache only; a missing one raises MasksNeeded."""
        if not any(i.mask_mode == "auto" for i in scene.instances):
            return None

        def from_cache(rgb: np.ndarray, inst: Instance) -> np.ndarray:
            hit = self.cache.get(self.key(rgb, inst), rgb.shape[:2])
            if hit is None:
                raise MasksNeeded(inst.index)
            return hit

        return from_cache

    def run(self, job: Job, scene: Scene) -> dict[str, Any]:
        """Compute every missing `mask: auto` mask of the scene into the cache (a job's work)."""
        from ctxgen.models.loading import resolve_device
        from ctxgen.models.sam import make_segmenter

        todo = [i for i in scene.instances if i.mask_mode == "auto"]
        segment = make_segmenter(self.sam_model, str(resolve_device(self.device)), self.cache_root,
                                 loader=self._load)
        done = []
        for k, inst in enumerate(todo):
            job.check_cancel()
            job.emit("progress", stage=f"segmenting instance {inst.index}", done=k, total=len(todo))
            mask = segment(read_image_rgb(inst.image), inst)
            done.append({"index": inst.index, "foreground": int((mask >= 128).sum())})
        job.emit("progress", stage="done", done=len(todo), total=len(todo))
        return {"masks": done}

    def _load(self, model: str, device: Any, dtype: Any) -> Any:
        """The SAM model, loaded on the first job and kept for the server's lifetime."""
        with self._lock:
            if self._model is None:
                from ctxgen.models.sam import load_sam

                self._model = load_sam(model, device, dtype)
            return self._model

