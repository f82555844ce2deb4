"""Stage `t2i`: one scene image per prompt with FLUX.1-dev (+ the turbo LoRA), 1024², 8 steps (D3 step 2)."""

from __future__ import annotations

from typing import Any

from ctxgen.dataset.construct.context import Context
from ctxgen.dataset.construct.store import Done, Item, png

UPSTREAM = "prompts"


def generate(pipe: Any, prompt: str, settings: Any, generator: Any) -> Any:
    """One image from a FluxPipeline's own __call__ (size W, H; steps; guidance; T5 length)."""
    w, h = settings.size
    return pipe(prompt=prompt, width=w, height=h, num_inference_steps=settings.steps,
                guidance_scale=settings.guidance, max_sequence_length=settings.text_len,
                generator=generator).images[0]


def run(ctx: Context, up: Done) -> Item:
    image = generate(ctx.models.get("t2i"), up.data["prompt"], ctx.cfg.t2i, ctx.torch_generator(up.id))
    return Item(up.id, {"size": list(image.size)}, {"image.png": png(image.convert("RGB"))})
