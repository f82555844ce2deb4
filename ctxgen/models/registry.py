"""Model presets as data, the base/adapter resolution order and the identity of what a run loads (R21). Torch-free."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from ctxgen.core.errors import UserError

ENV_BASE = "CTXGEN_BASE"
ENV_ADAPTER = "CTXGEN_ADAPTER"
NO_ADAPTER = "none"  # an explicit --adapter none / CTXGEN_ADAPTER=none runs the base alone
DEFAULT_PRESET = "contextgen"
BASE_HUB_ID = "black-forest-labs/FLUX.1-Kontext-dev"
ADAPTER_HUB_ID = "ruihangxu/ContextGen"
TINY = "tiny"  # the base id that builds the tiny model in memory


@dataclass(frozen=True)
class Preset:
    """A named base + adapter pair (R21)."""

    name: str
    base: str  # hub id, local folder, or "tiny"
    adapter: str | None  # hub id, local folder or .safetensors file; None = base only
    description: str
    builtin: bool  # True when the base is built from configs, no weights needed


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="contextgen",
            base=BASE_HUB_ID,
            adapter=ADAPTER_HUB_ID,
            description="FLUX.1-Kontext-dev + the released ContextGen LoRA (R21)",
            builtin=False,
        ),
        Preset(
            name="tiny",
            base=TINY,
            adapter=None,
            description="a tiny random FLUX-Kontext-shaped model built offline, for tests",
            builtin=True,
        ),
    )
}


@dataclass(frozen=True)
class ModelSpec:
    """What to load: the preset it came from and the resolved base and adapter sources."""

    preset: str
    base: str
    adapter: str | None


def _pick(explicit: str | None, env_name: str, preset_value: str | None) -> str | None:
    """Explicit argument, else environment variable, else the preset's value."""
    if explicit is not None and explicit.strip():
        return explicit.strip()
    env = os.environ.get(env_name, "").strip()
    if env:
        return env
    return preset_value


def resolve_model_spec(model: str | None, base: str | None = None, adapter: str | None = None) -> ModelSpec:
    """Preset + overrides -> ModelSpec; args beat CTXGEN_BASE/CTXGEN_ADAPTER, which beat the preset (R21)."""
    name = (model or DEFAULT_PRESET).strip()
    preset = PRESETS.get(name)
    if preset is None:
        known = ", ".join(sorted(PRESETS))
        raise UserError(f"--model: unknown preset '{name}'; choose one of: {known}")
    chosen_base = _pick(base, ENV_BASE, preset.base)
    chosen_adapter = _pick(adapter, ENV_ADAPTER, preset.adapter)
    if chosen_adapter is not None and chosen_adapter.lower() == NO_ADAPTER:
        chosen_adapter = None
    return ModelSpec(preset=name, base=chosen_base, adapter=chosen_adapter)


@dataclass(frozen=True)
class ModelIdentity:
    """What a run loads, resolved without loading weights: part of every output's key and metadata."""

    base: str
    adapter: str | None  # as given (hub id, folder or file); None = base only
    adapter_file: str | None  # the .safetensors file that is loaded
    adapter_sha256: str | None
    fused: bool
    dtype: str  # "float32", "bfloat16", ...
    device: str  # "cpu", "cuda", "cuda:1", ...

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def on(self, device: str, dtype: str) -> ModelIdentity:
        """The same weights on another device (workers resolve their own device and dtype)."""
        return replace(self, device=device, dtype=dtype)
