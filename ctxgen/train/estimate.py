"""`--dry-run`'s memory estimate of one training step on one GPU, counted on the meta device (no weights read).

Weights, LoRA, gradients and optimizer state are exact byte counts. Activations are what autograd keeps: one
double and one single block are run on meta tensors with a LoRA attached, and the unique storages of the tensors
saved for backward are summed (saved-tensor hooks; attention saves q, k, v, its output and the log-sum-exp, as the
fused kernels do). Without gradient checkpointing every block's saves stay alive until backward; with it, only
each block's inputs do, plus one block's saves while it is recomputed. DPO runs two samples (target and rejected)
through the policy and then the reference forward while the policy's saves are alive. Totals get tiers' 5 %
allocator slack and 1 GB CUDA reserve (`card_bytes`): estimates, until `gpu_bench_train.py` measures a peak.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ctxgen.models.registry import TINY
from ctxgen.models.tiers import BF16, NF4, TIER_SIZES, FLUX_CONFIGS, GB, card_bytes
from ctxgen.sequence.tokens import build_sequence
from ctxgen.train.references import floor16

OPTIMIZER_BYTES = {"adamw": 8.0, "prodigy": 16.0, "adamw8bit": 2.0 + 8 / 256}  # per trained parameter


@dataclass(frozen=True)
class Estimate:
    """Bytes per part of one training step's peak, and what they were computed for."""

    parts: dict[str, int]
    seq_len: int
    trainable: int
    notes: tuple[str, ...] = field(default=())

    @property
    def peak(self) -> int:
        return sum(self.parts.values())

    @property
    def card(self) -> int:
        """The GPU memory the peak needs (allocator slack + CUDA reserve)."""
        return card_bytes(self.peak)

    def as_dict(self) -> dict:
        return {"parts": self.parts, "peak_bytes": self.peak, "card_bytes": self.card, "seq_len": self.seq_len,
                "trainable": self.trainable, "notes": list(self.notes)}


def transformer_config(base: str) -> dict:
    """The transformer config of a base without reading weights: FLUX.1-Kontext-dev's, tiny's, or a folder's."""
    from ctxgen.models.tiny import TRANSFORMER_CONFIG

    if base == TINY:
        return dict(TRANSFORMER_CONFIG)
    path = Path(base) / "transformer" / "config.json"
    if path.is_file():
        cfg = json.loads(path.read_text(encoding="utf-8"))
        return {k: v for k, v in cfg.items() if not k.startswith("_")}
    return dict(FLUX_CONFIGS["transformer"])


def meta_transformer(config: dict, rank: int, names_from=None, dtype=torch.bfloat16):
    """The transformer on the meta device with a trainable LoRA of `rank` on the R21 targets."""
    from diffusers import FluxTransformer2DModel
    from peft import LoraConfig

    from ctxgen.models.tiny import lora_target_modules

    with torch.device("meta"):
        tr = FluxTransformer2DModel(**config).to(dtype)
        names = lora_target_modules(tr.config.num_layers, tr.config.num_single_layers)
        tr.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(names_from or names)))
    tr.requires_grad_(False)
    for n, p in tr.named_parameters():
        if ".lora_" in n:
            p.requires_grad_(True)
    return tr, list(names_from or names)


class _Attention(torch.autograd.Function):
    """A fused attention kernel's memory behaviour: output only; saves q, k, v, output, log-sum-exp."""

    @staticmethod
    def forward(ctx, q, k, v):
        out = torch.empty_like(q)
        ctx.save_for_backward(q, k, v, out, q.new_empty(q.shape[:-1], dtype=torch.float32))
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, _, _ = ctx.saved_tensors
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def saved_bytes(fn, exclude) -> int:
    """Bytes of the unique non-parameter storages autograd saves while fn() runs."""
    import torch.nn.functional as F

    seen: dict[int, int] = {}
    skip = {t.untyped_storage()._cdata for t in exclude}
    kept = []

    def pack(t):
        key = t.untyped_storage()._cdata
        if key not in skip and key not in seen:
            seen[key] = t.untyped_storage().nbytes()
            kept.append(t)
        return t

    sdpa = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = lambda query, key, value, *a, **kw: _Attention.apply(query, key, value)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
    finally:
        F.scaled_dot_product_attention = sdpa
    return sum(seen.values())


def block_saves(tr, seq_len: int, text_len: int, batch: int, dtype) -> dict[str, int]:
    """Saved bytes of one double and one single block at this sequence, and of one block's inputs."""
    d = tr.config.num_attention_heads * tr.config.attention_head_dim
    head = tr.config.attention_head_dim
    with torch.device("meta"):
        img = torch.empty(batch, seq_len - text_len, d, dtype=dtype)
        txt = torch.empty(batch, text_len, d, dtype=dtype)
        temb = torch.empty(batch, d, dtype=dtype)
        rope = (torch.empty(seq_len, head), torch.empty(seq_len, head))
    params = list(tr.parameters())
    out = {}
    for kind, block in (("double", tr.transformer_blocks[0]), ("single", tr.single_transformer_blocks[0])):
        out[kind] = saved_bytes(lambda: block(hidden_states=img, encoder_hidden_states=txt, temb=temb,
                                              image_rotary_emb=rope), params)
    out["inputs"] = (img.numel() + txt.numel() + temb.numel()) * img.element_size()
    return out


def sequence_length(canvas: tuple[int, int], area: int, text_len: int, refs: int) -> int:
    """S = T + 2M + Σ L_n for `refs` square references of area R² (floored to 16 px, T2)."""
    side = floor16(area) // 16
    return build_sequence(canvas, text_len, [(side, side)] * refs).seq_len


def estimate(cfg, refs: int = 3) -> Estimate:
    """The estimated peak of one training step of this config on one GPU (batch of one example per micro-step)."""
    doc = cfg.doc
    config = transformer_config(cfg.base)
    full = config == dict(FLUX_CONFIGS["transformer"])
    bf16 = doc.train.precision == "bf16"
    dtype, width = (torch.bfloat16, BF16) if bf16 else (torch.float32, 4)
    tr, names = meta_transformer(config, cfg.rank, dtype=dtype)
    from ctxgen.train.lora import trainable_count

    trainable = trainable_count(tr, names, cfg.rank)
    frozen = sum(p.numel() for n, p in tr.named_parameters() if ".lora_" not in n)
    seq = sequence_length(tuple(doc.data.canvas), doc.data.reference_area, doc.data.text_len, refs)
    pairs = 2 if cfg.method == "dpo" else 1
    saves = block_saves(tr, seq, doc.data.text_len, pairs, dtype)
    n_double, n_single = tr.config.num_layers, tr.config.num_single_layers
    if doc.train.gradient_checkpointing:
        act = (n_double + n_single) * saves["inputs"] + max(saves["double"], saves["single"]) + 3 * saves["inputs"]
    else:
        act = n_double * saves["double"] + n_single * saves["single"]
    frozen_bytes = frozen * width
    if doc.model.quantize == "nf4":  # Linear weights in 4 bits, norms and embeddings stay in bf16
        nf4 = TIER_SIZES.nf4_params["transformer"] if full else frozen
        frozen_bytes = nf4 * NF4 + (frozen - nf4) * BF16
    parts = {"frozen transformer": int(frozen_bytes),
             "LoRA weights (float32)": trainable * 4, "LoRA gradients (float32)": trainable * 4,
             f"optimizer state ({doc.optimizer.name})": int(trainable * OPTIMIZER_BYTES[doc.optimizer.name]),
             "activations kept for backward": int(act)}
    notes = [f"sequence S = {seq} tokens ({refs} references of {floor16(doc.data.reference_area)}^2 px)"]
    if cfg.method == "dpo":
        parts["DPO reference forward (2 samples)"] = TIER_SIZES.step_bytes_per_token * seq * 2 if full else 0
        if full and cfg.init_adapter is not None:
            notes.append("the SFT adapter is fused into the base (no extra memory after loading)")
    if full:
        parts["VAE"] = TIER_SIZES.params["vae"] * BF16
        parts["VAE encode (working)"] = TIER_SIZES.vae_bytes_per_pixel * doc.data.canvas[0] * doc.data.canvas[1]
        text = TIER_SIZES.params["text_encoder"] + TIER_SIZES.params["text_encoder_2"]
        if cfg.text_cache is None:
            t5 = TIER_SIZES.nf4_params["text_encoder_2"] if doc.model.quantize == "nf4" else 0
            parts["text encoders (CLIP, T5)"] = int((text - t5) * BF16 + t5 * NF4)
        else:
            notes.append(f"text cache: CLIP and T5 unloaded after the cache is filled (their {text * BF16 / GB:.1f} "
                         "GB are needed only while filling it, before training starts)")
    else:
        notes.append("not the full FLUX.1-Kontext transformer: VAE and text encoders not counted")
    return Estimate(parts, seq, trainable, tuple(notes))


__all__ = ["Estimate", "estimate", "sequence_length"]
