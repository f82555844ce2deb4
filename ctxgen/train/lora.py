"""The trained LoRA (T1, R21): peft layers on the R21 targets in float32, keyed init, and the adapter file render loads.

Weights are read and written as diffusers LoRA safetensors (`FluxKontextPipeline.save_lora_weights`, keys
`transformer.<module>.lora_A/B.weight`, the LoraConfig in the `lora_adapter_metadata` header). DPO trains a fresh
LoRA over a base with the SFT adapter fused (T4); its file is the exact sum of both as one LoRA of rank
r_sft + r_dpo (A stacked, B side by side with each scale folded in), so `render --adapter` needs one file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from ctxgen.core.errors import UserError
from ctxgen.core.fsio import discard, part_prefix, publish
from ctxgen.models.tiny import lora_target_modules
from ctxgen.train.randomness import INIT, keyed_seed

POLICY = "ctxgen_train"  # the trained adapter's peft name


@dataclass(frozen=True)
class LoraPart:
    """One module's LoRA as plain tensors: delta W = scale · B @ A."""

    a: torch.Tensor  # float32 (r, in)
    b: torch.Tensor  # float32 (out, r)
    scale: float


def target_modules(transformer, targets) -> list[str]:
    """R21's list (`r21`) or the configured names; every one must be a Linear of this transformer."""
    cfg = transformer.config
    names = lora_target_modules(cfg.num_layers, cfg.num_single_layers) if targets == "r21" else list(targets)
    modules = dict(transformer.named_modules())
    bad = [n for n in names if not isinstance(getattr(modules.get(n), "base_layer", modules.get(n)), torch.nn.Linear)]
    if bad:
        raise UserError(f"lora.targets: {', '.join(bad[:3])} is not a Linear module of the base transformer; use "
                        "r21 or module names such as transformer_blocks.0.attn.to_q")
    return names


def trainable_count(transformer, names: Iterable[str], rank: int) -> int:
    """The closed form: sum over targets of r·(in + out)."""
    modules = dict(transformer.named_modules())
    total = 0
    for name in names:
        linear = getattr(modules[name], "base_layer", modules[name])
        total += rank * (linear.in_features + linear.out_features)
    return total


def _config(rank: int, alpha: float, init: str, names: list[str]):
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, target_modules=names, lora_dropout=0.0,
                      init_lora_weights="gaussian" if init == "gaussian" else True)


def metadata(rank: int, alpha: float, init: str, names: Iterable[str]) -> dict:
    """The LoraConfig fields diffusers rebuilds the adapter from when it loads the file."""
    return {"r": rank, "lora_alpha": alpha, "target_modules": sorted(names), "lora_dropout": 0.0, "bias": "none",
            "init_lora_weights": "gaussian" if init == "gaussian" else True, "use_rslora": False, "use_dora": False}


def lora_layers(transformer, adapter: str) -> dict[str, object]:
    """module name -> its peft LoraLayer that holds `adapter`."""
    from peft.tuners.lora import LoraLayer

    return {n: m for n, m in transformer.named_modules() if isinstance(m, LoraLayer) and adapter in m.lora_A}


def add_policy(transformer, rank: int, alpha: float, init: str, names: list[str], seed: int
               ) -> list[torch.nn.Parameter]:
    """T1: a fresh LoRA (B = 0) in float32 on the targets, A drawn from a keyed CPU generator; only it trains."""
    transformer.add_adapter(_config(rank, alpha, init, names), adapter_name=POLICY)
    transformer.requires_grad_(False)
    gen = torch.Generator("cpu").manual_seed(keyed_seed(seed, INIT))
    params = []
    for name, layer in lora_layers(transformer, POLICY).items():
        a, b = layer.lora_A[POLICY], layer.lora_B[POLICY]
        a.to(torch.float32)  # T1/T3: trained weights in float32 whatever the base's dtype (in place)
        b.to(torch.float32)
        w = torch.empty(a.weight.shape, dtype=torch.float32)  # (r, in), drawn on CPU: the same on every device
        if init == "gaussian":
            torch.nn.init.normal_(w, std=1 / rank, generator=gen)  # peft's "gaussian"
        else:
            torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)  # peft's default
        with torch.no_grad():
            a.weight.copy_(w)
            b.weight.zero_()
        params += [a.weight, b.weight]
    for p in params:
        p.requires_grad_(True)
    return params


def collect(transformer, adapter: str) -> dict[str, LoraPart]:
    """A loaded adapter's weights and scales as float32 CPU tensors, per module."""
    return {name: LoraPart(layer.lora_A[adapter].weight.detach().float().cpu(),
                           layer.lora_B[adapter].weight.detach().float().cpu(), float(layer.scaling[adapter]))
            for name, layer in lora_layers(transformer, adapter).items()}


def load_into_policy(transformer, parts: dict[str, LoraPart], what: str) -> None:
    """SFT from an initial adapter: its weights become the policy's (same rank; B rescaled to the policy's scale)."""
    layers = lora_layers(transformer, POLICY)
    extra = sorted(set(parts) - set(layers))
    if extra:
        raise UserError(f"{what}: trains module {extra[0]}, which lora.targets leaves out; set lora.targets: r21")
    for name, part in parts.items():
        layer = layers[name]
        a, b = layer.lora_A[POLICY].weight, layer.lora_B[POLICY].weight
        if part.a.shape != a.shape:
            raise UserError(f"{what}: rank {part.a.shape[0]} but lora.rank is {a.shape[0]}; set lora.rank: "
                            f"{part.a.shape[0]} to continue training it")
        with torch.no_grad():
            a.copy_(part.a)
            b.copy_(part.b * (part.scale / float(layer.scaling[POLICY])))


def policy_parts(transformer) -> dict[str, LoraPart]:
    """The trained LoRA, per module (float32 CPU copies)."""
    return collect(transformer, POLICY)


def combined(first: dict[str, LoraPart], second: dict[str, LoraPart]) -> dict[str, LoraPart]:
    """One LoRA equal to the sum of two: A = [A1; A2], B = [s1·B1 | s2·B2], scale 1 (zeros where one is absent)."""
    r1 = next(iter(first.values())).a.shape[0] if first else 0
    r2 = next(iter(second.values())).a.shape[0] if second else 0
    out = {}
    for name in sorted(set(first) | set(second)):
        ref = first.get(name) or second[name]
        fan_in, fan_out = ref.a.shape[1], ref.b.shape[0]
        a, b = torch.zeros(r1 + r2, fan_in), torch.zeros(fan_out, r1 + r2)  # (r, in), (out, r)
        for part, lo, hi in ((first.get(name), 0, r1), (second.get(name), r1, r1 + r2)):
            if part is not None:
                a[lo:hi], b[:, lo:hi] = part.a, part.b * part.scale
        out[name] = LoraPart(a, b, 1.0)
    return out


def write_adapter(path: Path, parts: dict[str, LoraPart], alpha: float | None, init: str,
                  dtype: torch.dtype = torch.float32) -> Path:
    """R21: a diffusers LoRA safetensors file (atomic) that `render --adapter` loads; scale = alpha / rank."""
    from diffusers import FluxKontextPipeline

    rank = next(iter(parts.values())).a.shape[0]
    alpha = rank if alpha is None else alpha
    layers = {}
    for name, part in parts.items():  # a file of scale alpha/rank: fold the rest of each part's scale into B
        fold = part.scale / (alpha / rank)
        layers[f"{name}.lora_A.weight"] = part.a.to(dtype).contiguous()
        layers[f"{name}.lora_B.weight"] = (part.b * fold).to(dtype).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{part_prefix(path)}{os.urandom(4).hex()}.part"
    try:
        FluxKontextPipeline.save_lora_weights(path.parent, transformer_lora_layers=layers, weight_name=tmp.name,
                                              transformer_lora_adapter_metadata=metadata(rank, alpha, init, parts))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        return publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise
