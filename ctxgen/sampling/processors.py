"""Stage 5a: per-block CLA/ICA attention processors for the stock diffusers FLUX transformer (R15-R19; docs/spec.md).

The processors hold no weights and reuse diffusers' `FluxAttnProcessor` computation (projections, QK-norm,
RoPE, `dispatch_attention_fn`); they only choose which mask goes in as `attention_mask`. The masks reach
them once per transformer call through `joint_attention_kwargs={"ctxgen_masks": masks}`: `FluxAttention.forward`
forwards exactly the keywords a processor's `__call__` declares. In both block kinds diffusers puts the text
tokens first (`cat([encoder, image])` in the double-block processor and in `FluxSingleTransformerBlock`), so
the attention sequence is [text | main | layout | refs], the order the masks are built for (R13).

Two kernels (`--attention`). "sdpa": the processors hand the mask to `dispatch_attention_fn`, whose native
backend passes it unchanged to `torch.nn.functional.scaled_dot_product_attention`; ctxgen gives it an additive
float mask in the compute dtype (0 = may attend, -inf = not), expanded once per scene, because SDPA converts a
boolean mask to that form on every call (57 times per step). "flex": the mask is a FlexAttention `BlockMask`
(ctxgen.sampling.flex) and the processor runs the same projections with the compiled flex kernel, which skips the tiles
the mask forbids. A (1, 1, S, S) boolean mask (True = may attend) still works, as the published code uses it.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from diffusers.models.transformers.transformer_flux import FluxAttnProcessor

from ctxgen.core.errors import UserError
from ctxgen.core.options import ATTENTION_CHOICES, choose
from ctxgen.sampling.flex import flex_available, flex_masks, flux_flex_attention
from ctxgen.sequence.masks import MASK_KINDS

try:
    from torch.nn.attention.flex_attention import BlockMask
except ImportError:  # torch without FlexAttention: only the sdpa kernel
    BlockMask = None

logger = logging.getLogger(__name__)

MASKS_KWARG = "ctxgen_masks"
_MASK_ALIGN = 16  # CUDA SDPA kernels want a bias whose row stride is a multiple of 16 (else they pad every call)


class MaskedFluxAttnProcessor(FluxAttnProcessor):
    """Stock FLUX attention restricted by this block's CLA or ICA mask (R15, R16, R18)."""

    def __init__(self, kind: str):
        super().__init__()
        if kind not in MASK_KINDS:
            raise ValueError(f"attention kind must be one of {MASK_KINDS}, got {kind!r}")
        self.kind = kind

    def __call__(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        ctxgen_masks: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Run the stock processor with `attention_mask` = this block's mask; no masks → stock behaviour (R18)."""
        if ctxgen_masks is not None:
            if attention_mask is not None:
                raise ValueError("pass either attention_mask or ctxgen_masks to a MaskedFluxAttnProcessor, not both")
            attention_mask = ctxgen_masks[self.kind]  # (1, 1, S, S) additive or bool, or a BlockMask
            if BlockMask is not None and isinstance(attention_mask, BlockMask):
                return flux_flex_attention(attn, hidden_states, encoder_hidden_states, image_rotary_emb, attention_mask)
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r})"


def _processor_names(transformer: torch.nn.Module) -> tuple[list[str], list[str]]:
    """Module names of the double- and single-block attention processors, in block order (R18)."""
    double = [f"transformer_blocks.{i}.attn.processor" for i in range(len(transformer.transformer_blocks))]
    n_single = len(transformer.single_transformer_blocks)
    single = [f"single_transformer_blocks.{i}.attn.processor" for i in range(n_single)]
    return double, single


def install_processors(
    transformer: torch.nn.Module, schedule: tuple[tuple[str, ...], tuple[str, ...]]
) -> dict[str, object]:
    """Install one masked processor per attention module from the (double, single) kind schedule (R18)."""
    double, single = _processor_names(transformer)
    kinds_double, kinds_single = schedule
    if len(kinds_double) != len(double) or len(kinds_single) != len(single):
        raise ValueError(
            f"block schedule has {len(kinds_double)} double / {len(kinds_single)} single entries but the "
            f"transformer has {len(double)} / {len(single)} blocks"
        )
    old = dict(transformer.attn_processors)
    if set(old) != set(double) | set(single):
        extra = sorted(set(old) - set(double) - set(single))
        raise ValueError(f"unexpected attention modules in the transformer: {extra}")
    new = {name: MaskedFluxAttnProcessor(kind) for name, kind in zip(double + single, kinds_double + kinds_single)}
    transformer.set_attn_processor(new)  # consumes (pops from) the dict it is given
    logger.debug("installed ctxgen processors: double=%s single=%s", kinds_double, kinds_single)
    return old


def resolve_attention(name: str, device: str | torch.device) -> str:
    """auto -> flex on CUDA when FlexAttention is available, else sdpa (cpu, mps); an explicit flex must work there."""
    name = choose("--attention", name, ATTENTION_CHOICES, "kernel")
    dev_type = torch.device(device).type
    if name == "auto":
        return "flex" if dev_type == "cuda" and flex_available() else "sdpa"
    if name == "flex" and (dev_type not in ("cuda", "cpu") or not flex_available()):
        raise UserError(
            f"--attention flex: FlexAttention is not available on {dev_type} with torch {torch.__version__}; "
            "use --attention sdpa (or torch >= 2.6 on CUDA or CPU)"
        )
    return name


def sdpa_masks(masks, device: str | torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Both masks as additive (1, 1, S, S) biases (0 / -inf) in `dtype`, expanded on the device once per scene (R19)."""
    dev = torch.device(device)
    s = masks.seq_len
    width = s if dev.type == "cpu" else -(-s // _MASK_ALIGN) * _MASK_ALIGN  # aligned rows for GPU kernels
    out = {}
    for kind in MASK_KINDS:
        keys = torch.from_numpy(masks.class_keys(kind)).to(dev)  # (C, S) bool
        rows = torch.from_numpy(masks.row_classes(kind).astype(np.int64)).to(dev)  # (S,)
        bias = torch.zeros(keys.shape[0], width, dtype=dtype, device=dev)  # (C, width)
        bias[:, :s].masked_fill_(~keys, float("-inf"))
        out[kind] = bias[rows][:, :s][None, None]  # (S, width) -> (1, 1, S, S), row stride `width`
    return out


def bool_masks(masks, device: str | torch.device) -> dict[str, torch.Tensor]:
    """Both masks as dense (1, 1, S, S) bool on the device: the published code's form, for comparisons (R19)."""
    out = {}
    for kind in MASK_KINDS:
        keys = torch.from_numpy(masks.class_keys(kind)).to(device)  # (C, S) bool
        rows = torch.from_numpy(masks.row_classes(kind).astype(np.int64)).to(device)  # (S,)
        out[kind] = keys[rows][None, None]  # (S, S) -> (1, 1, S, S)
    return out


def kernel_masks(masks, device: str | torch.device, dtype: torch.dtype, attention: str) -> dict[str, object]:
    """The scene's masks in the form the chosen kernel wants, once per scene (R19): BlockMasks or additive biases."""
    if attention == "flex":
        return flex_masks(masks, device)
    if attention == "sdpa":
        return sdpa_masks(masks, device, dtype)
    raise ValueError(f"attention must be 'sdpa' or 'flex' here, got {attention!r} (resolve 'auto' first)")
