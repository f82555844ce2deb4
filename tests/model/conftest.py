"""Session fixtures: the tiny model built once, saved once, loaded once (CPU, float32, adapter fused)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ctxgen.models.loading import LoadedModel, load_model
from ctxgen.models.registry import ModelSpec
from ctxgen.models.tiny import build_tiny_components, save_tiny_model

TINY_GRID = (4, 4)  # (Ht, Wt) of the probe inputs below
TINY_TEXT_LEN = 8


@pytest.fixture(scope="session")
def tiny_components() -> dict:
    """build_tiny_components(seed=0); shared by the session, so do not modify it."""
    return build_tiny_components(seed=0)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Folder with `base/` (diffusers layout) and `adapter/` (contextgen_tiny_100/_200.safetensors)."""
    root = tmp_path_factory.mktemp("tiny_model")
    save_tiny_model(root)
    return root


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir) -> LoadedModel:
    """The saved tiny base + highest-step adapter through load_model: CPU, float32, fused. Do not modify it."""
    spec = ModelSpec(preset="tiny", base=str(tiny_model_dir / "base"), adapter=str(tiny_model_dir / "adapter"))
    return load_model(spec, device="cpu", dtype="float32", fuse=True)


def probe_inputs(seed: int = 0) -> dict:
    """Seeded transformer inputs: T=8 text tokens and a 4x4 grid of 64-channel image tokens."""
    gen = torch.Generator().manual_seed(seed)
    ht, wt = TINY_GRID
    rows, cols = torch.meshgrid(torch.arange(ht), torch.arange(wt), indexing="ij")
    img_ids = torch.stack([torch.zeros(ht * wt), rows.flatten(), cols.flatten()], dim=1).float()  # (M, 3)
    return dict(
        hidden_states=torch.randn(1, ht * wt, 64, generator=gen),  # (1, M, 64)
        encoder_hidden_states=torch.randn(1, TINY_TEXT_LEN, 32, generator=gen),  # (1, T, 32)
        pooled_projections=torch.randn(1, 32, generator=gen),
        timestep=torch.tensor([0.5]),
        img_ids=img_ids,
        txt_ids=torch.zeros(TINY_TEXT_LEN, 3),
        guidance=torch.tensor([3.5]),
    )


@pytest.fixture(scope="session")
def tiny_inputs():
    """The probe_inputs(seed) factory: seeded inputs for one tiny transformer forward."""
    return probe_inputs


@pytest.fixture(scope="session")
def tiny_forward():
    """A callable (transformer, inputs=None) -> (1, M, 64) output of one transformer forward, no grad."""

    def run(transformer, inputs: dict | None = None) -> torch.Tensor:
        with torch.no_grad():
            return transformer(**(inputs or probe_inputs()), return_dict=False)[0]

    return run
