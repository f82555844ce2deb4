"""Preview renders during training: chosen scenes rendered by the policy in memory, every K steps (R19, R20).

The scenes are prepared once (`prepare_scene`), the sampling is `Renderer.sample` itself; only the prompt
embeddings come from training's text encoder (so a filled text cache serves them too). Main process only.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from PIL import Image

from ctxgen.core.fsio import write_png
from ctxgen.sampling.conditioning import encode_context
from ctxgen.sampling.processors import kernel_masks
from ctxgen.sampling.renderer import Conditioning, Renderer
from ctxgen.scene.model import load_scene
from ctxgen.sequence.prepare import PreparedScene, prepare_scene

PREVIEWS = "previews"


def condition(model, sp: PreparedScene, text, attention: str) -> Conditioning:
    """Renderer.condition with the prompt from `text` (a TextEncoder): context latents, ids, masks (R19)."""
    t0 = time.perf_counter()
    with torch.inference_mode():
        context = encode_context(model, sp.composition)  # (1, M + sum L_n, 64)
    embeds, pooled, text_ids = text(sp.prompt)
    img_ids = torch.from_numpy(sp.tokens.ids).to(model.device)  # (S - T, 3) float32, R14
    masks = kernel_masks(sp.masks, model.device, model.dtype, attention)
    return Conditioning(embeds.to(model.dtype), pooled.to(model.dtype), text_ids, context, img_ids, masks,
                        truncated=False, prompt_tokens=0, seconds=time.perf_counter() - t0)


class Previewer:
    """Renders each preview scene at each seed with the model as it is now."""

    def __init__(self, model, text, scenes: tuple[Path, ...], doc, attention: str):
        self.model, self.text, self.doc, self.attention = model, text, doc, attention
        self.scenes = [prepare_scene(load_scene(p), text.text_len) for p in scenes]
        self.renderer = Renderer(model, text.text_len, attention) if self.scenes else None

    def prompts(self) -> list[str]:
        """The wrapped prompts the previews need (for the text cache)."""
        return [sp.prompt for sp in self.scenes]

    def render(self, run_dir: Path, step: int, autocast) -> list[Path]:
        """RUN/previews/<scene>/step-<step>-seed-<seed>.png for every scene and seed."""
        paths = []
        for sp in self.scenes:
            with autocast():
                cond = condition(self.model, sp, self.text, self.attention)
                for seed in self.doc.seeds:
                    sample = self.renderer.sample(sp, cond, seed, self.doc.steps, self.doc.guidance)
                    path = run_dir / PREVIEWS / sp.scene.stem / f"step-{step:08d}-seed-{seed}.png"
                    paths.append(write_png(path, Image.fromarray(sample.image, "RGB")))
        return paths
