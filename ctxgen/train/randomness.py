"""Every random draw of training, keyed by (seed, step, index): nothing to save for a bit-identical resume.

`index` is the example's place in the global batch (rank + world·micro-batch), so any number of processes draws
the same numbers for the same example. numpy streams are PCG64 keyed through SeedSequence (stable across numpy
versions); torch draws (`step.noise_and_t`) come from a CPU generator seeded by `keyed_seed` (the same noise on
every device, as R20). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ctxgen.dataset.record import Record

EXAMPLE, NOISE, MIX, INIT = 1, 2, 3, 4  # stream tags


def keyed_rng(seed: int, tag: int, *key: int) -> np.random.Generator:
    """A PCG64 generator for (seed, tag, *key)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, tag, *key])))


def keyed_seed(seed: int, tag: int, *key: int) -> int:
    """A 64-bit seed for (seed, tag, *key), for torch generators."""
    return int(np.random.SeedSequence([seed, tag, *key]).generate_state(1, np.uint64)[0])


@dataclass(frozen=True)
class Choices:
    """The augmentations drawn for one example (T2)."""

    drop_caption: bool  # the caption becomes ""
    variants: tuple[str, ...]  # per instance: "plain" | "enhanced" (repainted reference) | "face" (aligned crop)
    layer_seed: int  # R11's generator seed for this example's layering


def draw_choices(rec: Record, data, seed: int, step: int, index: int) -> Choices:
    """T2 draws in a fixed order: caption, then (face, enhanced) per instance, then the layering seed."""
    rng = keyed_rng(seed, EXAMPLE, step, index)
    u = rng.random(1 + 2 * len(rec.instances))  # every draw made whether it applies or not: a stable stream
    layer_seed = int(rng.integers(2**32))
    drop = rec.subset in data.caption_dropout_subsets and bool(u[0] < data.caption_dropout)
    variants = []
    for k, inst in enumerate(rec.instances):
        if inst.kind == "face" and inst.face_image is not None and u[1 + 2 * k] < data.face_p:
            variants.append("face")
        elif inst.enhanced_image is not None and u[2 + 2 * k] < data.enhanced_p:
            variants.append("enhanced")
        else:
            variants.append("plain")
    if not data.random_layer_order:
        layer_seed = rec.seed if rec.seed is not None else 0
    return Choices(drop, tuple(variants), layer_seed)
