"""FlexAttention for the CLA/ICA masks (R15-R19): one `BlockMask` per mask kind, built once per scene from the
class form on the device, and the compiled kernel the masked processors call.

A mask's rows fall into a few classes (`MaskSet.row_classes`, `MaskSet.class_keys`), so `mask_mod(q, kv)` is
`keys[row_class[q], kv]` and the tile tables follow from per-class key-block summaries: a query block x key
block tile is skipped when no class present in the query block has a key in it, and is "full" (mask_mod not
evaluated) when every class present there sees all of its keys. The tables cover the sequence padded to a whole
number of blocks: padded keys are never allowed, padded query rows get a class of their own that sees nothing
(flex returns zeros for such rows and the kernel never writes them: `seq_lengths` is the true S), so nothing
padded reaches a real row. The hidden states themselves are not padded.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable

import numpy as np
import torch

from ctxgen.sequence.masks import MASK_KINDS

logger = logging.getLogger(__name__)

BLOCK = 128  # tokens per tile side, the kernel's default sparse block size


def flex_available() -> bool:
    """FlexAttention with `BlockMask.from_kv_blocks(..., seq_lengths=...)` (torch >= 2.6) and dynamo support."""
    try:
        from torch.nn.attention.flex_attention import BlockMask
    except ImportError:
        return False
    params = inspect.signature(BlockMask.from_kv_blocks).parameters
    return "seq_lengths" in params and torch._dynamo.is_dynamo_supported()


def class_tables(masks, device: str | torch.device, block: int = BLOCK) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per kind: keys bool (C, S_pad) and row classes int64 (S_pad,) on the device, padded to whole blocks.

    Both kinds get the same class count C (unused classes see nothing), so CLA and ICA share one compiled
    kernel; padded rows use the last class, which sees nothing, and padded keys are never allowed.
    """
    s = masks.seq_len
    s_pad = -(-s // block) * block
    n_cls = max(masks.class_keys(kind).shape[0] for kind in MASK_KINDS) + 1  # + the padded rows' empty class
    out = {}
    for kind in MASK_KINDS:
        keys = np.zeros((n_cls, s_pad), dtype=bool)
        own = masks.class_keys(kind)  # (C_kind, S)
        keys[: own.shape[0], :s] = own
        rows = np.full(s_pad, n_cls - 1, dtype=np.int64)
        rows[:s] = masks.row_classes(kind)
        out[kind] = (torch.from_numpy(keys).to(device), torch.from_numpy(rows).to(device))
    return out


def class_mask_mod(keys: torch.Tensor, rows: torch.Tensor) -> Callable:
    """mask_mod(b, h, q, kv) = keys[rows[q], kv]: the dense mask read through its class form (R15, R16)."""

    def mask_mod(b, h, q_idx, kv_idx):
        return keys[rows[q_idx], kv_idx]

    return mask_mod


def tile_tables(keys: torch.Tensor, rows: torch.Tensor, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """bool (nb, nb) tiles that hold some allowed pair but not only allowed pairs, and tiles that are all allowed."""
    n_cls, s_pad = keys.shape
    nb = s_pad // block
    key_blocks = keys.view(n_cls, nb, block)  # (C, nb, b)
    any_key, all_keys = key_blocks.any(dim=-1), key_blocks.all(dim=-1)  # (C, nb) each
    present = torch.zeros(nb, n_cls, dtype=torch.bool, device=keys.device)
    present[torch.arange(s_pad, device=keys.device) // block, rows] = True  # (nb, C): classes in each query block
    touched = (present[:, :, None] & any_key[None]).any(dim=1)  # (nb, nb)
    not_full = (present[:, :, None] & ~all_keys[None]).any(dim=1)  # (nb, nb)
    return touched & not_full, ~not_full


def _ordered(tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tile map (nb, nb) -> counts int32 (1, 1, nb) and key-block indices int32 (1, 1, nb, nb), chosen ones first."""
    counts = tiles.sum(dim=-1, dtype=torch.int32)  # (nb,)
    order = torch.argsort(tiles.to(torch.uint8), dim=-1, descending=True, stable=True).to(torch.int32)  # (nb, nb)
    return counts[None, None], order[None, None]


def block_mask(keys: torch.Tensor, rows: torch.Tensor, seq_len: int, block: int = BLOCK):
    """A `BlockMask` over S = seq_len tokens from a padded class table (R19: once per scene)."""
    from torch.nn.attention.flex_attention import BlockMask

    partial, full = tile_tables(keys, rows, block)
    counts, order = _ordered(partial)
    full_counts, full_order = _ordered(full)
    return BlockMask.from_kv_blocks(
        counts, order, full_counts, full_order, BLOCK_SIZE=block, mask_mod=class_mask_mod(keys, rows),
        seq_lengths=(seq_len, seq_len),
    )  # fmt: skip


def flex_masks(masks, device: str | torch.device, block: int = BLOCK) -> dict[str, object]:
    """Both kinds as BlockMasks on the device, built once per scene from the class form (R19)."""
    tables = class_tables(masks, device, block)
    return {kind: block_mask(keys, rows, masks.seq_len, block) for kind, (keys, rows) in tables.items()}


@functools.cache
def compiled_flex(device_type: str, backend: str = "inductor") -> Callable:
    """torch.compile(flex_attention): fused kernel; static shapes on CPU (inductor's CPU template needs them)."""
    from torch.nn.attention.flex_attention import flex_attention

    dynamic = False if device_type == "cpu" else None
    return torch.compile(flex_attention, backend=backend, dynamic=dynamic)


def flex_attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask, backend: str = "inductor"):
    """(B, S, H, D) q, k, v in diffusers' layout -> (B, S, H, D) attention restricted by the BlockMask."""
    from torch.nn.attention.flex_attention import flex_attention

    q, k, v = (x.transpose(1, 2) for x in (query, key, value))  # (B, H, S, D) each
    kernel = flex_attention if torch.compiler.is_compiling() else compiled_flex(q.device.type, backend)
    out = kernel(q, k, v, block_mask=mask)  # (B, H, S, D)
    return out.transpose(1, 2)  # (B, S, H, D)


def flux_flex_attention(attn, hidden_states, encoder_hidden_states, image_rotary_emb, mask, backend="inductor"):
    """diffusers' FLUX attention (projections, QK-norm, text first, RoPE) with the flex kernel (R15-R18)."""
    from diffusers.models.embeddings import apply_rotary_emb
    from diffusers.models.transformers.transformer_flux import _get_qkv_projections

    q, k, v, eq, ek, ev = _get_qkv_projections(attn, hidden_states, encoder_hidden_states)
    q, k, v = (x.unflatten(-1, (-1, attn.head_dim)) for x in (q, k, v))  # (B, S_img, H, D)
    q, k = attn.norm_q(q), attn.norm_k(k)
    if attn.added_kv_proj_dim is not None:  # double block: text tokens first (R13)
        eq, ek, ev = (x.unflatten(-1, (-1, attn.head_dim)) for x in (eq, ek, ev))  # (B, T, H, D)
        q = torch.cat([attn.norm_added_q(eq), q], dim=1)  # (B, S, H, D)
        k = torch.cat([attn.norm_added_k(ek), k], dim=1)
        v = torch.cat([ev, v], dim=1)
    if image_rotary_emb is not None:
        q = apply_rotary_emb(q, image_rotary_emb, sequence_dim=1)
        k = apply_rotary_emb(k, image_rotary_emb, sequence_dim=1)
    out = flex_attend(q, k, v, mask, backend).flatten(2, 3).to(q.dtype)  # (B, S, H*D)
    if encoder_hidden_states is None:
        return out
    n_text = encoder_hidden_states.shape[1]
    text, image = out.split_with_sizes([n_text, out.shape[1] - n_text], dim=1)  # (B, T, H*D), (B, S - T, H*D)
    image = attn.to_out[1](attn.to_out[0](image.contiguous()))
    return image, attn.to_add_out(text.contiguous())
