"""FlexAttention masks and kernel (R15-R19) against dense SDPA on the bundled scenes, CPU float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ctxgen.sampling.processors import kernel_masks, resolve_attention, sdpa_masks
from ctxgen.core.errors import UserError
from ctxgen.sampling.flex import BLOCK, class_mask_mod, class_tables, flex_attend, flex_available, flex_masks
from ctxgen.models.loading import load_model
from ctxgen.models.registry import ModelSpec
from ctxgen.sequence.prepare import prepare_scene
from ctxgen.scene.model import load_scene
from tests.model.helpers import write_small_scene

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
TEXT_LEN = 8  # the tiny model's T5 length
HEADS, HEAD_DIM = 2, 16  # the tiny transformer's, so the kernel compiled here serves the render test too

pytestmark = pytest.mark.skipif(not flex_available(), reason="FlexAttention needs torch >= 2.6")


@pytest.fixture(scope="module")
def small_plan(tmp_path_factory):
    return prepare_scene(load_scene(write_small_scene(tmp_path_factory.mktemp("scene"))), TEXT_LEN)


@pytest.fixture(scope="module")
def plans():
    """PreparedScene per bundled scene (tokens and class masks, no model)."""
    return {name: prepare_scene(load_scene(EXAMPLES / name), TEXT_LEN) for name in SCENES}


def reference_tiles(masks, kind: str, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """(partial, full) tile maps from dense rows, one query block at a time; padding counts as forbidden."""
    table = masks.table(kind)
    s = masks.seq_len
    nb = -(-s // block)
    partial, full = np.zeros((nb, nb), bool), np.zeros((nb, nb), bool)
    for qb in range(nb):
        rows = np.zeros((block, nb * block), bool)
        dense = table.keys[table.row_class[qb * block : (qb + 1) * block]]  # (<=b, S)
        rows[: dense.shape[0], :s] = dense
        tiles = rows.reshape(block, nb, block)  # (b, nb, b)
        full[qb] = tiles.all(axis=(0, 2))
        partial[qb] = tiles.any(axis=(0, 2)) & ~full[qb]
    return partial, full


def tiles_of(bm) -> tuple[np.ndarray, np.ndarray]:
    """Dense (partial, full) tile maps from a BlockMask's ordered tables."""
    out = []
    for counts, idx in ((bm.kv_num_blocks, bm.kv_indices), (bm.full_kv_num_blocks, bm.full_kv_indices)):
        counts, idx = counts[0, 0].numpy(), idx[0, 0].numpy()
        tiles = np.zeros((idx.shape[0], idx.shape[1]), bool)
        for q, n in enumerate(counts):
            tiles[q, idx[q, :n]] = True
        out.append(tiles)
    return out[0], out[1]


def test_block_tables_equal_dense_tiles_on_bundled_scenes(plans):
    for name, sp in plans.items():
        bms = flex_masks(sp.masks, "cpu")
        for kind in ("cla", "ica"):
            partial, full = tiles_of(bms[kind])
            want_partial, want_full = reference_tiles(sp.masks, kind)
            assert np.array_equal(partial, want_partial), (name, kind)
            assert np.array_equal(full, want_full), (name, kind)
            assert np.array_equal(partial | full, sp.masks.block_map(kind, BLOCK)), (name, kind)
            assert bms[kind].shape == (1, 1, sp.masks.seq_len, sp.masks.seq_len)
        assert full.any() and (~(partial | full)).any(), name  # every scene has skipped and unmasked tiles


def test_block_tables_equal_torch_create_block_mask(plans):
    from torch.nn.attention.flex_attention import create_block_mask

    masks = plans["rgb_mask.yaml"].masks
    s = masks.seq_len
    assert s % BLOCK  # a partial last block
    for kind, (keys, rows) in class_tables(masks, "cpu").items():
        ours = flex_masks(masks, "cpu")[kind]
        ref = create_block_mask(class_mask_mod(keys, rows), None, None, s, s, device="cpu", BLOCK_SIZE=BLOCK)
        for field in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices"):
            assert torch.equal(getattr(ours, field), getattr(ref, field)), (kind, field)


def test_class_tables_share_shapes_and_pad_with_nothing(plans):
    masks = plans["park.yaml"].masks
    tables = class_tables(masks, "cpu")
    (keys_c, rows_c), (keys_i, rows_i) = tables["cla"], tables["ica"]
    assert keys_c.shape == keys_i.shape and rows_c.shape == rows_i.shape  # one compiled kernel for both kinds
    s = masks.seq_len
    assert keys_c.shape[1] % BLOCK == 0 and not keys_c[:, s:].any()  # padded keys never allowed
    assert not keys_c[rows_c[s:]].any()  # padded rows see nothing
    assert torch.equal(keys_i[rows_i[:s]][:, :s], torch.from_numpy(masks.dense("ica")))


def probe_rows(masks, kind: str, per_class: int = 3) -> np.ndarray:
    """Query rows to check: a few of every row class, plus the last rows (the partial last block)."""
    row_class = masks.row_classes(kind)
    rows = [np.flatnonzero(row_class == c)[:per_class] for c in np.unique(row_class)]
    return np.unique(np.concatenate(rows + [np.arange(masks.seq_len - 4, masks.seq_len)]))


@pytest.mark.slow  # a subprocess, process pool, Ray or accelerate run: in CI, not in the quick suite
def test_flex_equals_sdpa_on_bundled_scenes(plans):
    gen = torch.Generator().manual_seed(0)
    for name, sp in plans.items():
        s = sp.masks.seq_len
        q, k, v = (torch.randn(1, s, HEADS, HEAD_DIM, generator=gen) for _ in range(3))  # (B, S, H, D)
        bms = flex_masks(sp.masks, "cpu")
        for kind in ("cla", "ica"):
            got = flex_attend(q, k, v, bms[kind])  # (B, S, H, D), every row computed by the compiled kernel
            rows = probe_rows(sp.masks, kind)
            table = sp.masks.table(kind)
            dense = torch.from_numpy(table.keys[table.row_class[rows]])[None, None]  # (1, 1, R, S) dense rows
            want = F.scaled_dot_product_attention(q[:, rows].transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  attn_mask=dense)  # (B, H, R, D)
            torch.testing.assert_close(got[:, rows], want.transpose(1, 2), atol=1e-5, rtol=0, msg=f"{name} {kind}")
            assert torch.isfinite(got).all()


def test_sdpa_masks_are_additive_biases(plans):
    masks = plans["rgb_mask.yaml"].masks
    for dtype in (torch.float32, torch.bfloat16):
        out = sdpa_masks(masks, "cpu", dtype)
        for kind in ("cla", "ica"):
            bias = out[kind]
            assert bias.shape == (1, 1, masks.seq_len, masks.seq_len) and bias.dtype == dtype
            allowed = torch.from_numpy(masks.dense(kind))
            assert torch.equal(bias[0, 0] == 0, allowed) and torch.isneginf(bias[0, 0][~allowed]).all()
    s = masks.seq_len
    assert s % 16 and sdpa_masks(masks, "cpu", torch.float32)["cla"].is_contiguous()
    gpu_like = sdpa_masks(masks, "meta", torch.bfloat16)["ica"]  # off the CPU: rows padded to 16 elements
    assert gpu_like.shape == (1, 1, s, s) and gpu_like.stride(-2) == -(-s // 16) * 16 and gpu_like.stride(-1) == 1


def test_resolve_attention_per_device():
    assert resolve_attention("auto", "cpu") == "sdpa"
    assert resolve_attention("auto", torch.device("cuda")) == "flex"
    assert resolve_attention("flex", "cpu") == "flex" and resolve_attention("sdpa", "cuda") == "sdpa"
    with pytest.raises(UserError, match="unknown kernel 'xformers'"):
        resolve_attention("xformers", "cpu")
    with pytest.raises(UserError, match="use --attention sdpa"):
        resolve_attention("flex", "mps")
    with pytest.raises(ValueError, match="resolve 'auto' first"):
        kernel_masks(None, "cpu", torch.float32, "auto")


@pytest.fixture(scope="module")
def renderers(tiny_model_dir):
    """Two fresh tiny models (CPU, float32, fused adapter) with processors for sdpa and flex."""
    from ctxgen.sampling.renderer import Renderer

    spec = ModelSpec(preset="tiny", base=str(tiny_model_dir / "base"), adapter=str(tiny_model_dir / "adapter"))
    return {kind: Renderer(load_model(spec, "cpu", "float32"), TEXT_LEN, attention=kind) for kind in ("sdpa", "flex")}


def test_renderer_flex_equals_sdpa(small_plan, renderers):
    sp = small_plan
    out = {}
    for kind, renderer in renderers.items():
        cond = renderer.condition(sp)
        assert renderer.attention == kind and cond.peak_memory is None
        sample = renderer.sample(sp, cond, seed=3, steps=2, guidance=3.5)
        out[kind] = (cond, sample)
    (cs, ss), (cf, sf) = out["sdpa"], out["flex"]
    assert isinstance(cs.masks["cla"], torch.Tensor) and type(cf.masks["cla"]).__name__ == "BlockMask"
    assert torch.equal(cs.context, cf.context) and torch.equal(cs.prompt_embeds, cf.prompt_embeds)
    assert ss.image.shape == (256, 256, 3) and ss.peak_memory is None
    assert np.abs(ss.image.astype(int) - sf.image.astype(int)).max() <= 1  # uint8 rounding of ~1e-6 differences
    assert ss.image.std() > 1


def test_scene_inputs_are_built_once_and_reused(small_plan, renderers, monkeypatch):
    import ctxgen.sampling.processors
    import ctxgen.sampling.conditioning

    calls = {"encode_prompt": 0, "encode_context": 0, "kernel_masks": 0}
    for module, name in ((ctxgen.sampling.conditioning, "encode_prompt"), (ctxgen.sampling.conditioning, "encode_context"),
                         (ctxgen.sampling.processors, "kernel_masks")):  # fmt: skip
        real = getattr(module, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    renderer = renderers["flex"]
    seen = []
    attn = renderer.model.transformer.single_transformer_blocks[0].attn
    hook = attn.register_forward_pre_hook(lambda m, a, kw: seen.append(id(kw["ctxgen_masks"]["ica"])), with_kwargs=True)
    sp = small_plan
    try:
        cond = renderer.condition(sp)
        for seed in (1, 2):
            renderer.sample(sp, cond, seed=seed, steps=2, guidance=3.5)
    finally:
        hook.remove()
    assert calls == {"encode_prompt": 1, "encode_context": 1, "kernel_masks": 1}  # R19: once per scene
    assert len(seen) == 4 and set(seen) == {id(cond.masks["ica"])}  # the same mask object every step and seed
