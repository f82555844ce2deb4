"""Masked attention processors on a tiny stock diffusers FLUX transformer (R15-R19), float32 CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.models.transformers.transformer_flux import FluxAttnProcessor

from ctxgen.sampling.processors import MaskedFluxAttnProcessor, install_processors
from tests.model.helpers import attention_masks, restore_processors
from tests.model.helpers import tiny_transformer as _tiny_transformer

T, GRID, REF_GRIDS = 8, (4, 4), ((2, 3), (3, 2))  # text length, main grid (Ht, Wt), ref grids (th, tw)
M = GRID[0] * GRID[1]
REF_LENS = tuple(h * w for h, w in REF_GRIDS)
C = M + sum(REF_LENS)  # context tokens: layout + refs
S = T + M + C
REF_START = (T + 2 * M, T + 2 * M + REF_LENS[0])  # first sequence index of each ref
FG = (np.array([1, 1, 0, 1, 1, 0], bool), np.array([0, 1, 1, 1, 1, 0], bool))  # token masks m_n
BOXES = ((0, 0, 2, 2), (1, 2, 4, 4))  # (y1t, x1t, y2t, x2t) per ref on the main grid
CLA2 = ("cla", "cla")


def tiny_transformer():
    """The shared tiny transformer with 2 double / 4 single blocks."""
    return _tiny_transformer(2, 4)


def position_ids() -> torch.Tensor:
    """R14 ids of [main | layout | ref0 | ref1], float32 (S - T, 3)."""
    rows = []
    ht, wt = GRID
    for m in (0, 1):
        rows += [(m, y, x) for y in range(ht) for x in range(wt)]
    oy, ox = ht, wt
    for th, tw in REF_GRIDS:
        rows += [(1, oy + y, ox + x) for y in range(th) for x in range(tw)]
        oy, ox = oy + th, ox + tw
    return torch.tensor(rows, dtype=torch.float32)


def scene_masks(fg=FG, boxes=BOXES) -> tuple[np.ndarray, np.ndarray]:
    """CLA and ICA masks (R15, R16) built directly as numpy arrays."""
    cla = np.zeros((S, S), bool)
    cla[: T + 2 * M, : T + 2 * M] = True
    ica_extra = np.zeros((S, S), bool)
    for start, n_tok, m, (y1, x1, y2, x2) in zip(REF_START, REF_LENS, fg, boxes):
        cols = start + np.flatnonzero(m)
        cla[start : start + n_tok, :T] = True
        cla[np.ix_(np.arange(start, start + n_tok), cols)] = True
        in_box = [T + r * GRID[1] + c for r in range(y1, y2) for c in range(x1, x2)]
        ica_extra[np.ix_(in_box, cols)] = True
    return cla, cla | ica_extra


def inputs(seed: int = 1) -> dict[str, torch.Tensor]:
    """Transformer keyword inputs for one sequence shaped [text | main | layout | ref0 | ref1]."""
    g = torch.Generator().manual_seed(seed)
    return dict(
        hidden_states=torch.randn(1, M + C, 64, generator=g),  # (1, S - T, 64)
        encoder_hidden_states=torch.randn(1, T, 32, generator=g),  # (1, T, 32)
        pooled_projections=torch.randn(1, 32, generator=g),
        timestep=torch.tensor([0.7]),
        guidance=torch.tensor([3.5]),
        txt_ids=torch.zeros(T, 3),
        img_ids=position_ids(),
    )


def run(model, kw, masks=None) -> torch.Tensor:
    """Main-token output (1, M, 64) of one forward."""
    jak = None if masks is None else {"ctxgen_masks": masks}
    with torch.no_grad():
        return model(**kw, joint_attention_kwargs=jak, return_dict=False)[0][:, :M]


def with_ref_changed(kw, n: int, token_idx=None) -> dict[str, torch.Tensor]:
    """Copy of the inputs with reference n's context tokens (all, or the given local indices) replaced."""
    hs = kw["hidden_states"].clone()
    start = REF_START[n] - T
    idx = np.arange(REF_LENS[n]) if token_idx is None else np.asarray(token_idx)
    hs[0, start + idx] = torch.randn(len(idx), 64, generator=torch.Generator().manual_seed(99)) * 3
    return {**kw, "hidden_states": hs}


@pytest.fixture(scope="module")
def model():
    return tiny_transformer()


def test_all_true_masks_equal_stock(model):
    kw = inputs()
    stock = run(model, kw)
    full = np.ones((S, S), bool)
    old = install_processors(model, (CLA2, ("ica", "ica", "cla", "cla")))
    try:
        masked = run(model, kw, attention_masks(full, full, "cpu"))
        unmasked = run(model, kw)
    finally:
        restore_processors(model, old)
    assert stock.abs().max() > 0.1
    torch.testing.assert_close(masked, stock, atol=1e-5, rtol=0)
    assert torch.equal(unmasked, stock)  # no masks → exactly the stock processor


def test_hidden_reference_changes_nothing(model):
    cla, ica = scene_masks(boxes=(BOXES[0], (0, 0, 0, 0)))  # no main token is in ref1's box
    old = install_processors(model, (CLA2, ("ica", "ica", "cla", "cla")))
    try:
        masks = attention_masks(cla, ica, "cpu")
        kw = inputs()
        base = run(model, kw, masks)
        assert torch.equal(run(model, with_ref_changed(kw, 1), masks), base)
        background = np.flatnonzero(~FG[0])  # R15: nobody attends to m_n = 0 tokens
        assert torch.equal(run(model, with_ref_changed(kw, 0, background), masks), base)
        changed = run(model, with_ref_changed(kw, 0), masks)
    finally:
        restore_processors(model, old)
    assert (changed - base).abs().max() > 1e-4


def test_ica_box_lets_main_see_its_reference(model):
    cla, ica = scene_masks()
    kw = inputs()
    masks = attention_masks(cla, ica, "cpu")
    old = install_processors(model, (CLA2, ("cla",) * 4))
    try:
        cla_only = run(model, kw, masks)
        assert torch.equal(run(model, with_ref_changed(kw, 1), masks), cla_only)  # CLA: refs never reach main
    finally:
        restore_processors(model, old)
    old = install_processors(model, (CLA2, ("ica", "ica", "cla", "cla")))
    try:
        base = run(model, kw, masks)
        delta = (run(model, with_ref_changed(kw, 1), masks) - base).abs().amax(dim=-1)[0]  # (M,)
    finally:
        restore_processors(model, old)
    y1, x1, y2, x2 = BOXES[1]
    in_box = [r * GRID[1] + c for r in range(y1, y2) for c in range(x1, x2)]
    assert delta[in_box].min() > 1e-5  # ICA single blocks: box tokens see ref1, and it shows
    assert delta.max() > 1e-4


def test_swapping_cla_ica_in_one_single_block_changes_output(model):
    cla, ica = scene_masks()
    kw = inputs()
    masks = attention_masks(cla, ica, "cpu")
    outs = []
    for single in (("ica", "ica", "cla", "cla"), ("ica", "cla", "cla", "cla"), ("ica", "ica", "ica", "cla")):
        old = install_processors(model, (CLA2, single))
        try:
            outs.append(run(model, kw, masks))
        finally:
            restore_processors(model, old)
    assert (outs[1] - outs[0]).abs().max() > 1e-5
    assert (outs[2] - outs[0]).abs().max() > 1e-5


def test_install_restore_round_trip(model):
    before = model.attn_processors
    kw = inputs()
    stock = run(model, kw)
    schedule = (("cla", "ica"), ("ica", "cla", "ica", "cla"))
    old = install_processors(model, schedule)
    now = model.attn_processors
    assert [now[f"transformer_blocks.{i}.attn.processor"].kind for i in range(2)] == list(schedule[0])
    assert [now[f"single_transformer_blocks.{i}.attn.processor"].kind for i in range(4)] == list(schedule[1])
    assert len({id(p) for p in now.values()}) == 6  # one instance per attention module
    restore_processors(model, old)
    after = model.attn_processors
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)
    assert all(type(p) is FluxAttnProcessor for p in after.values())
    assert torch.equal(run(model, kw), stock)


def test_install_rejects_wrong_schedule(model):
    with pytest.raises(ValueError, match="2 double / 3 single"):
        install_processors(model, (CLA2, ("ica", "ica", "cla")))
    with pytest.raises(ValueError, match="attention kind"):
        install_processors(model, (CLA2, ("ica", "ica", "cla", "full")))
    assert all(type(p) is FluxAttnProcessor for p in model.attn_processors.values())


def test_attention_masks_shape_and_validation():
    cla, ica = scene_masks()
    masks = attention_masks(cla, ica, "cpu")
    assert set(masks) == {"cla", "ica"}
    for kind, ref in (("cla", cla), ("ica", ica)):
        assert masks[kind].shape == (1, 1, S, S) and masks[kind].dtype == torch.bool
        assert np.array_equal(masks[kind][0, 0].numpy(), ref)
    with pytest.raises(ValueError, match="bool"):
        attention_masks(cla.astype(np.float32), ica, "cpu")
    with pytest.raises(ValueError, match="differ in shape"):
        attention_masks(cla, ica[:-1, :-1], "cpu")
    empty_row = cla.copy()
    empty_row[5] = False
    with pytest.raises(ValueError, match="row 5"):
        attention_masks(empty_row, ica, "cpu")


def test_processor_refuses_two_masks(model):
    proc = MaskedFluxAttnProcessor("ica")
    attn = model.single_transformer_blocks[0].attn
    x = torch.randn(1, S, 32)
    full = torch.ones(1, 1, S, S, dtype=torch.bool)
    with pytest.raises(ValueError, match="not both"):
        proc(attn, x, attention_mask=full, ctxgen_masks={"cla": full, "ica": full})
