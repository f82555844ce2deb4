"""The settings that change pixels, as one typed object: the CLI fills it, the metadata stores it and
`reproduce` rebuilds it whole. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, get_args

from ctxgen.core.errors import UsageError

Attention = Literal["auto", "sdpa", "flex"]  # auto: flex on CUDA, sdpa elsewhere
Memory = Literal["full", "balanced", "low"]  # memory tiers (ctxgen.models.memory)
DType = Literal["auto", "bfloat16", "float16", "float32"]
ATTENTION_CHOICES: tuple[str, ...] = get_args(Attention)
MEMORY_CHOICES: tuple[str, ...] = get_args(Memory)
DTYPE_CHOICES: tuple[str, ...] = get_args(DType)
DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
MAX_TEXT_LEN = 512  # T5's max_sequence_length in FLUX (R13)
MAX_STEPS = 200
MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes 0..2^64-1


@dataclass(frozen=True)
class RenderOptions:
    """Pixel-changing settings chosen for a run; `steps`/`guidance` None means "the scene's own"."""

    steps: int | None = None
    guidance: float | None = None
    text_len: int = MAX_TEXT_LEN  # T5 tokens T (R13)
    dtype: str = "auto"  # auto: bfloat16 on a GPU, float32 on CPU
    memory: str = "full"
    attention: str = "auto"
    fuse: bool = True  # fuse the LoRA into the transformer weights

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", choose("--dtype", self.dtype, DTYPE_CHOICES, "dtype", DTYPE_ALIASES))
        object.__setattr__(self, "memory", choose("--memory", self.memory, MEMORY_CHOICES, "tier"))
        object.__setattr__(self, "attention", choose("--attention", self.attention, ATTENTION_CHOICES, "kernel"))
        if self.steps is not None and not 1 <= self.steps <= MAX_STEPS:
            raise UsageError(f"--steps: must be 1..{MAX_STEPS}, got {self.steps}")
        if self.guidance is not None and not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise UsageError(f"--guidance: must be a finite number >= 0, got {self.guidance}")
        if not 1 <= self.text_len <= MAX_TEXT_LEN:
            raise UsageError(f"--text-len: must be 1..{MAX_TEXT_LEN}, got {self.text_len}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderOptions:
        """Rebuild from `as_dict()` output; unknown keys are ignored, missing ones take the defaults."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def with_(self, **changes: Any) -> RenderOptions:
        return replace(self, **changes)


def choose(flag: str, value: str, choices: tuple[str, ...], noun: str, aliases: dict[str, str] | None = None) -> str:
    """A choice normalised (case, spaces, aliases); anything else is a usage error naming the choices."""
    text = str(value).strip().lower()
    text = (aliases or {}).get(text, text)
    if text not in choices:
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        extra = f" (or {', '.join(sorted(aliases))})" if aliases else ""
        raise UsageError(f"{flag}: unknown {noun} '{value}'; use {listed}{extra}")
    return text


def check_seed(seed: int, flag: str = "--seed") -> int:
    """A seed torch can take: 0..2^64-1."""
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"{flag}: must be 0..2^64-1 (18446744073709551615), got {seed}")
    return seed
