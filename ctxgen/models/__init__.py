"""Model presets, loading and the tiny test model (R13, R21).

Only the torch-free registry is imported here; `ctxgen.models.loading`, `.adapter` and `.tiny` pull in
torch/diffusers and are imported where needed.
"""

from ctxgen.models.registry import PRESETS, ModelSpec, Preset, resolve_model_spec

__all__ = ["PRESETS", "ModelSpec", "Preset", "resolve_model_spec"]
