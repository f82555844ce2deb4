"""Aesthetic role: the LAION aesthetic predictor (CLIP ViT-L/14 image features, L2-normalised, then a linear
MLP 768->1024->128->64->16->1 whose published weights have no activations) (E3).

The published weights are a pickle; `convert_weights` turns them into safetensors once, with
`torch.load(weights_only=True)`, never at run time. A converted folder holds `aesthetic_mlp.safetensors` and
`aesthetic.json` naming the CLIP model the features come from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ctxgen.core.errors import ModelError, UserError
from ctxgen.core.fsio import write_bytes, write_json
from ctxgen.vision.registry import CLIP_L14, TINY

MLP_FILE = "aesthetic_mlp.safetensors"
META_FILE = "aesthetic.json"
LAYERS = (0, 2, 4, 6, 7)  # Linear positions in the published nn.Sequential (Dropout between the first four)


def mlp_shapes(width: int = 768) -> dict[str, tuple[int, ...]]:
    """The state-dict keys and shapes of the published predictor for a `width`-dim CLIP embedding."""
    dims = (width, 1024, 128, 64, 16, 1)
    out: dict[str, tuple[int, ...]] = {}
    for i, layer in enumerate(LAYERS):
        out[f"layers.{layer}.weight"] = (dims[i + 1], dims[i])
        out[f"layers.{layer}.bias"] = (dims[i + 1],)
    return out


def convert_weights(pth: Path, out: Path, clip: str = CLIP_L14) -> Path:
    """The published `.pth` -> `out/aesthetic_mlp.safetensors` + `aesthetic.json` (weights_only load)."""
    import torch
    from safetensors.torch import save

    try:
        state = torch.load(Path(pth), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or a damaged file: one line either way
        raise UserError(f"{pth}: not loadable with torch.load(weights_only=True) ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160]})") from exc
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise UserError(f"{pth}: expected a state dict of the aesthetic MLP, got {type(state).__name__}")
    state = {k.removeprefix("model."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    width = int(state["layers.0.weight"].shape[1]) if "layers.0.weight" in state else 768
    want = mlp_shapes(width)
    bad = [k for k, shape in want.items() if k not in state or tuple(state[k].shape) != shape]
    if bad:
        raise UserError(f"{pth}: not the LAION aesthetic MLP ({bad[0]} missing or of another shape; "
                        f"expected {want[bad[0]]})")
    tensors = {k: state[k].float().contiguous() for k in want}
    write_bytes(Path(out) / MLP_FILE, save(tensors))
    write_json(Path(out) / META_FILE, {"clip": clip, "source": Path(pth).name, "width": width})
    return Path(out)


class AestheticPredictor:
    """score(images) -> (N,) predicted ratings: MLP(normalise(CLIP image features))."""

    def __init__(self, clip: Any, weights: dict[str, Any], ident: str):
        self.clip, self.weights, self.ident = clip, weights, ident

    def score(self, images: list[Any]) -> np.ndarray:
        import torch

        feats = self.clip.embed(images).astype(np.float32)  # (N, 768)
        norm = np.linalg.norm(feats, axis=-1, keepdims=True)
        x = torch.from_numpy(feats / np.where(norm == 0, 1.0, norm))
        with torch.inference_mode():
            for layer in LAYERS:
                x = x @ self.weights[f"layers.{layer}.weight"].T + self.weights[f"layers.{layer}.bias"]
        return x[:, 0].double().numpy()


def tiny_weights(width: int, seed: int = 0) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(*shape, generator=gen) * 0.1 for k, shape in mlp_shapes(width).items()}


def load_aesthetic(value: str, device: str, hub: bool) -> AestheticPredictor:
    """`tiny-random` or a converted folder (aesthetic_mlp.safetensors + aesthetic.json naming its CLIP)."""
    from ctxgen.vision.embedder import load_embedder

    if value == TINY:
        clip = load_embedder(TINY, device, hub, role="aesthetic", tiny="clip")
        width = int(clip.model.config.projection_dim)
        return AestheticPredictor(clip, tiny_weights(width), TINY)
    folder = Path(value).expanduser()
    if not (folder / MLP_FILE).is_file():
        raise ModelError(f"aesthetic: {folder} has no {MLP_FILE}; convert the published predictor once with "
                         f"`ctxgen eval convert-aesthetic sac+logos+ava1-l14-linearMSE.pth --out {folder}`")
    from safetensors.torch import load_file

    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8")) if (folder / META_FILE).is_file() else {}
    clip = load_embedder(meta.get("clip", CLIP_L14), device, hub, role="aesthetic", tiny="clip")
    weights = load_file(folder / MLP_FILE)
    return AestheticPredictor(clip, weights, f"{folder.resolve()}+{clip.ident}")
