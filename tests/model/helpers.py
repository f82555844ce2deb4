"""Small builders shared by the tiny-model tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import FluxTransformer2DModel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REFS = EXAMPLES / "refs"


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


def write_scene(folder: Path, name: str, seed: int = 1, ref: str = "dog.png", size: int = 256) -> Path:
    """A one-instance scene at size x size referencing an example image."""
    path = folder / f"{name}.yaml"
    path.write_text(f'prompt: "a {name} on grass"\nsize: [{size}, {size}]\nseed: {seed}\ninstances:\n'
                    f"  - image: {REFS / ref}\n    box: [40, 40, 200, 220]\n    label: pet\n")
    return path


def manifest(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
