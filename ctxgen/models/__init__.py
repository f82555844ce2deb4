"""Models: presets and identity (torch-free `registry`), loading with the adapter and memory tiers, the tiny
test model, SAM 2.1 for `mask: auto`, and the `doctor` report (R13, R21).

Only the torch-free registry is imported here; the rest pull in torch/diffusers and are imported where needed.
"""

from ctxgen.models.registry import PRESETS, ModelIdentity, ModelSpec, Preset, resolve_model_spec

__all__ = ["PRESETS", "ModelIdentity", "ModelSpec", "Preset", "resolve_model_spec"]
