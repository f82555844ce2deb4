"""Optimizers (T3): AdamW (published), 8-bit AdamW (bitsandbytes, CUDA) or Prodigy (the paper); the learning-rate
schedule as a pure function of the step; the optimizer state as safetensors tensors plus JSON scalars (no pickle).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
from typing import Any

import torch

from ctxgen.core.errors import UsageError, install_hint


def build_optimizer(params: list[torch.nn.Parameter], opt, device: torch.device) -> torch.optim.Optimizer:
    """The configured optimizer over the trained parameters (float32, T3)."""
    common = dict(lr=opt.lr, betas=tuple(opt.betas), weight_decay=opt.weight_decay)
    if opt.name == "adamw":
        return torch.optim.AdamW(params, eps=opt.eps, **common)
    if opt.name == "adamw8bit":
        if device.type != "cuda":
            raise UsageError(f"optimizer.name: adamw8bit (bitsandbytes) needs a CUDA GPU, but training runs on "
                             f"{device.type}; use adamw")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UsageError(f"optimizer.name: adamw8bit needs bitsandbytes; {install_hint('low-memory')}")
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, eps=opt.eps, **common)
    if importlib.util.find_spec("prodigyopt") is None:
        raise UsageError(f"optimizer.name: prodigy needs prodigyopt; {install_hint('train')}")
    from prodigyopt import Prodigy

    p = opt.prodigy
    with contextlib.redirect_stdout(io.StringIO()):  # prodigyopt prints its settings; stdout is for results
        return Prodigy(params, eps=opt.eps, use_bias_correction=p.use_bias_correction,
                       safeguard_warmup=p.safeguard_warmup, d_coef=p.d_coef, **common)


def lr_at(step: int, opt, max_steps: int) -> float:
    """The learning rate of the update that leads from `step` to `step + 1`: linear warm-up, then the schedule."""
    if step < opt.warmup_steps:
        return opt.lr * (step + 1) / opt.warmup_steps
    if opt.schedule == "constant":
        return opt.lr
    span = max(1, max_steps - opt.warmup_steps)
    frac = min(1.0, (step - opt.warmup_steps) / span)
    if opt.schedule == "linear":
        return opt.lr * (1.0 - frac)
    return opt.lr * 0.5 * (1.0 + math.cos(math.pi * frac))  # cosine


def _plain(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-ready copy of a state_dict value; tensors go to `tensors` under `path` and leave a reference."""
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().contiguous().cpu().clone()
        return {"__tensor__": path}
    if isinstance(value, dict):
        return {"__dict__": [[_plain(k, f"{path}/k{i}", tensors), _plain(v, f"{path}/{i}", tensors)]
                             for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, (list, tuple)):
        return {"__list__": [_plain(v, f"{path}/{i}", tensors) for i, v in enumerate(value)],
                "tuple": isinstance(value, tuple)}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"optimizer state holds a {type(value).__name__} at {path}; it cannot be saved without pickle")


def _restore(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__dict__" in value:
            return {_restore(k, tensors): _restore(v, tensors) for k, v in value["__dict__"]}
        if "__list__" in value:
            items = [_restore(v, tensors) for v in value["__list__"]]
            return tuple(items) if value["tuple"] else items
        if "__float__" in value:
            return float(value["__float__"])
    return value


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], Any]:
    """state_dict() as (tensors for safetensors, JSON-ready scalars), exact to the bit."""
    tensors: dict[str, torch.Tensor] = {}
    return tensors, _plain(optimizer.state_dict(), "opt", tensors)


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], scalars: Any) -> None:
    """Put a saved state back (tensors move to the parameters' device inside load_state_dict)."""
    optimizer.load_state_dict(_restore(scalars, tensors))
