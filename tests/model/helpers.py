"""Small builders shared by the tiny-model tests."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import FluxTransformer2DModel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write_small_scene(folder: Path) -> Path:
    """A 256x256 two-reference scene (S = 1,042, not a whole number of blocks) built from the bundled cut-outs."""
    refs = EXAMPLES / "refs"
    path = folder / "small.yaml"
    path.write_text(
        'prompt: "a dog with a ball"\nsize: [256, 256]\nseed: 1\nsteps: 2\ninstances:\n'
        f"  - image: {refs / 'dog.png'}\n    box: [20, 60, 180, 230]\n"
        f"  - image: {refs / 'ball.png'}\n    box: [150, 150, 240, 240]\n",
        encoding="utf-8",
    )
    return path


def tiny_transformer(n_double: int, n_single: int) -> FluxTransformer2DModel:
    """A seeded FLUX transformer with guidance embedding: 2 heads x 16, the given block counts, eval mode."""
    torch.manual_seed(0)
    model = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=n_double, num_single_layers=n_single, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
        axes_dims_rope=(4, 6, 6),
    )
    return model.eval()
