"""Small builders shared by the tiny-model tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import FluxTransformer2DModel

from ctxgen.models.tiny import TRANSFORMER_CONFIG
from ctxgen.sequence.masks import MASK_KINDS

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
    model = FluxTransformer2DModel(**{**TRANSFORMER_CONFIG, "num_layers": n_double, "num_single_layers": n_single})
    return model.eval()


def write_scene(folder: Path, name: str, seed: int = 1, ref: str = "dog.png", size: int = 256) -> Path:
    """A one-instance scene at size x size referencing an example image."""
    path = folder / f"{name}.yaml"
    path.write_text(f'prompt: "a {name} on grass"\nsize: [{size}, {size}]\nseed: {seed}\ninstances:\n'
                    f"  - image: {REFS / ref}\n    box: [40, 40, 200, 220]\n    label: pet\n")
    return path


def manifest(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def restore_processors(transformer: torch.nn.Module, old: dict[str, object]) -> None:
    """Put back the processors `install_processors` returned (R18)."""
    transformer.set_attn_processor(dict(old))


def attention_masks(mask_cla: np.ndarray, mask_ica: np.ndarray, device: str | torch.device) -> dict[str, torch.Tensor]:
    """Convert the scene's two boolean masks to (1, 1, S, S) bool tensors on `device`; call once per scene (R19)."""
    out = {}
    for kind, mask in zip(MASK_KINDS, (mask_cla, mask_ica)):
        if mask.dtype != np.bool_ or mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
            raise ValueError(f"{kind} mask must be a square 2-D bool array, got {mask.dtype} {mask.shape}")
        if mask.shape != mask_cla.shape:
            raise ValueError(f"cla and ica masks differ in shape: {mask_cla.shape} vs {mask.shape}")
        empty = np.flatnonzero(~mask.any(axis=1))
        if empty.size:
            raise ValueError(f"{kind} mask row {int(empty[0])} attends to nothing (softmax would be NaN)")
        out[kind] = torch.from_numpy(np.ascontiguousarray(mask)).to(device)[None, None]  # (1, 1, S, S)
    return out
