"""CLA / ICA masks, counts, schedule, token plan and dump (R15-R19)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxgen.core.errors import OutputError, UserError
from ctxgen.layout.compose import Composition, PreparedRef
from ctxgen.sequence.dump import write_dump
from ctxgen.sequence.masks import ClassMask, MaskSet, block_schedule, build_masks, build_tokens, check_counts
from ctxgen.sequence.tokens import build_sequence, expected_counts

# The 4x4-token scene: 64x64 px, T=2, ref0 and ref1 of 2x2 tokens. S = 2 + 16 + 16 + 4 + 4 = 42.
MASKS = [np.array([[1, 0], [1, 1]], bool), np.array([[1, 1], [0, 0]], bool)]  # c = (3, 2)
BOXES = [(0, 0, 2, 3), (1, 2, 4, 4)]  # (x1t, y1t, x2t, y2t): B0 = cols 0-1 x rows 0-2, B1 = cols 1-3 x rows 2-3
GRID = ["AA..", "AA..", "AXBB", ".BBB"]  # main tokens row-major: A in B0 only, B in B1 only, X in both, . in none


def keys(spec: str) -> np.ndarray:
    """A literal key row written as `text | main (4 rows) | layout (4 rows) | ref0 | ref1`."""
    return np.array([ch == "1" for ch in spec if ch in "01"], dtype=bool)


#            text  main                  layout                ref0   ref1
TML = keys("  11 | 1111 1111 1111 1111 | 1111 1111 1111 1111 | 0000 | 0000")  # R15 text/main/layout rows
REF0 = keys(" 11 | 0000 0000 0000 0000 | 0000 0000 0000 0000 | 1011 | 0000")
REF1 = keys(" 11 | 0000 0000 0000 0000 | 0000 0000 0000 0000 | 0000 | 1100")
OFF_A = keys("11 | 1111 1111 1111 1111 | 1111 1111 1111 1111 | 1011 | 0000")  # R16 official
OFF_B = keys("11 | 1111 1111 1111 1111 | 1111 1111 1111 1111 | 0000 | 1100")
OFF_X = keys("11 | 1111 1111 1111 1111 | 1111 1111 1111 1111 | 1011 | 1100")
PAP_A = keys("11 | 1100 1100 1100 0000 | 0000 0000 0000 0000 | 1011 | 0000")  # R16 paper (Eq. 4)
PAP_B = keys("11 | 0000 0000 0111 0111 | 0000 0000 0000 0000 | 0000 | 1100")
PAP_X = keys("11 | 1100 1100 1111 0111 | 0000 0000 0000 0000 | 1011 | 1100")


def literal(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The (42, 42) mask whose in-box main rows use a/b/x and all other rows follow CLA."""
    roles = ["."] * 2 + list("".join(GRID)) + ["."] * 16 + ["r0"] * 4 + ["r1"] * 4
    table = {".": TML, "A": a, "B": b, "X": x, "r0": REF0, "r1": REF1}
    return np.stack([table[r] for r in roles])


def scene_tokens():
    return build_sequence((64, 64), 2, [(2, 2), (2, 2)])


@pytest.mark.parametrize(
    ("mode", "rows"), [("official", (OFF_A, OFF_B, OFF_X)), ("paper", (PAP_A, PAP_B, PAP_X))]
)
def test_literal_masks_on_the_4x4_scene(mode, rows):
    masks = build_masks(scene_tokens(), MASKS, BOXES, ica=mode)
    assert masks.seq_len == 42
    np.testing.assert_array_equal(masks.dense("cla"), literal(TML, TML, TML))
    np.testing.assert_array_equal(masks.dense("ica"), literal(*rows))
    assert masks.count("cla") == 1192
    assert masks.count("ica") == {"official": 1222, "paper": 941}[mode]


def test_compact_form_has_one_class_per_box_set():
    masks = build_masks(scene_tokens(), MASKS, BOXES)
    assert masks.class_keys("cla").shape == (3, 42)  # tml, ref0, ref1
    assert masks.class_keys("ica").shape == (6, 42)  # + {B0}, {B1}, {B0, B1}
    rows = masks.row_classes("ica")
    assert rows.shape == (42,)
    assert len(set(rows[2:18].tolist())) == 4  # outside, A, B, X


def naive(tokens, token_masks, boxes, mode: str) -> np.ndarray:
    """R15/R16 written query by query, as independent of build_masks as possible."""
    s, t, m = tokens.seq_len, tokens.text_len, tokens.main_len
    wt = tokens.grid[1]
    fg = np.zeros((len(token_masks), s), bool)
    for n, mask in enumerate(token_masks):
        start = int(tokens.span_bounds[3 + n, 0])
        fg[n, start : start + mask.size] = mask.reshape(-1)
    inside = [lambda r, c, b=b: b[1] <= r < b[3] and b[0] <= c < b[2] for b in boxes]
    out = np.zeros((s, s), bool)
    for q in range(s):
        if q < t + 2 * m:
            out[q, : t + 2 * m] = True
        else:
            n = int(np.searchsorted(tokens.span_bounds[:, 1], q, side="right"))  # segment index of q
            out[q, :t] = True
            out[q] |= fg[n - 3]
        own = [n for n, f in enumerate(inside) if t <= q < t + m and f(*divmod(q - t, wt))]
        if own and mode == "paper":
            out[q] = False
            out[q, :t] = True
            for k in range(m):
                out[q, t + k] = any(inside[n](*divmod(k, wt)) for n in own)
        for n in own:
            out[q] |= fg[n]
    return out


@st.composite
def scenes(draw):
    wt, ht, t, n = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(0, 4)), draw(st.integers(0, 4))
    grids = [(draw(st.integers(1, 3)), draw(st.integers(1, 3))) for _ in range(n)]
    flat = [draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w)) for h, w in grids]
    masks = [np.array(bits, bool).reshape(h, w) for bits, (h, w) in zip(flat, grids)]
    boxes = []
    for _ in range(n):
        x1, y1 = draw(st.integers(0, wt - 1)), draw(st.integers(0, ht - 1))
        boxes.append((x1, y1, draw(st.integers(x1 + 1, wt)), draw(st.integers(y1 + 1, ht))))
    return build_sequence((16 * wt, 16 * ht), t, grids), masks, boxes


@settings(max_examples=80, deadline=None)
@given(scene=scenes(), mode=st.sampled_from(["official", "paper"]))
def test_random_scenes_match_rules_counts_and_packing(scene, mode):
    tokens, token_masks, boxes = scene
    masks = build_masks(tokens, token_masks, boxes, ica=mode)
    check_counts(masks, tokens, token_masks, boxes)
    n_cla, n_ica = expected_counts(tokens, token_masks, boxes, ica=mode)
    for kind, n_expected in (("cla", n_cla), ("ica", n_ica)):
        dense = masks.dense(kind)
        assert dense.shape == (tokens.seq_len, tokens.seq_len) and dense.dtype == bool
        np.testing.assert_array_equal(dense, naive(tokens, token_masks, boxes if kind == "ica" else [], mode))
        assert masks.count(kind) == int(dense.sum()) == n_expected
        np.testing.assert_array_equal(masks.packed(kind), np.packbits(dense, axis=-1))
        # a reference token with m_n = 0 is attended by nobody
        for n, mask in enumerate(token_masks):
            start = int(tokens.span_bounds[3 + n, 0])
            assert not dense[:, start + np.flatnonzero(~mask.reshape(-1))].any()
        tiles = masks.block_map(kind, 4)
        padded = np.zeros((4 * tiles.shape[0],) * 2, bool)
        padded[: tokens.seq_len, : tokens.seq_len] = dense
        np.testing.assert_array_equal(tiles, padded.reshape(tiles.shape[0], 4, -1, 4).any(axis=(1, 3)))
    cut = tokens.text_len + 2 * tokens.main_len
    block = masks.dense("cla")[:cut, :cut]
    np.testing.assert_array_equal(block, block.T)  # R15: text/main/layout attend each other both ways
    if mode == "official":
        block = masks.dense("ica")[:cut, :cut]
        np.testing.assert_array_equal(block, block.T)


def test_paper_mode_is_not_symmetric_where_the_rules_say_so():
    dense = build_masks(scene_tokens(), MASKS, BOXES, ica="paper").dense("ica")
    assert dense[5, 2] and not dense[2, 5]  # main (0,3) is outside every box and sees main (0,0), not vice versa
    assert dense[18, 2] and not dense[2, 18]  # layout token sees main (0,0); in-box main (0,0) no longer sees layout
    assert dense[0, 2] and dense[2, 0]  # text and in-box main still see each other


def test_unknown_ica_mode_and_bad_shapes():
    tokens = scene_tokens()
    with pytest.raises(UserError, match="ica: unknown mode 'full'"):
        build_masks(tokens, MASKS, BOXES, ica="full")
    with pytest.raises(ValueError, match="token mask 1 has shape"):
        build_masks(tokens, [MASKS[0], np.ones((3, 2), bool)], BOXES)
    with pytest.raises(ValueError, match="2 reference grids"):
        build_masks(tokens, MASKS[:1], BOXES)
    with pytest.raises(ValueError, match="unknown mask kind"):
        build_masks(tokens, MASKS, BOXES).dense("full")


def test_check_counts_catches_a_broken_mask():
    tokens = scene_tokens()
    good = build_masks(tokens, MASKS, BOXES)
    keys = good.class_keys("ica").copy()
    keys[0, -1] = True  # the 23 text, outside-box main and layout rows would see a background ref1 token
    bad = MaskSet(good.cla_table, ClassMask(good.row_classes("ica"), keys), "official")
    with pytest.raises(RuntimeError, match=r"\(1192, 1245\).*\(1192, 1222\)"):
        check_counts(bad, tokens, MASKS, BOXES)


@pytest.mark.parametrize(
    ("depth", "n_ica"), [((19, 38), 19), ((2, 4), 2), ((1, 3), 1), ((0, 1), 0), ((3, 0), 0)]
)
def test_block_schedule(depth, n_ica):
    doubles, singles = block_schedule(*depth)
    assert doubles == ("cla",) * depth[0]
    assert singles == ("ica",) * n_ica + ("cla",) * (depth[1] - n_ica)


def test_block_schedule_flux_literal():
    doubles, singles = block_schedule(19, 38)
    assert len(doubles) == 19 and set(doubles) == {"cla"}
    assert singles[18] == "ica" and singles[19] == "cla" and singles.count("ica") == 19
    with pytest.raises(ValueError):
        block_schedule(-1, 4)


def make_plan() -> Composition:
    refs = tuple(
        PreparedRef(n, np.zeros((32, 32, 3), np.float32), np.zeros((32, 32), bool), MASKS[n]) for n in range(2)
    )
    return Composition(
        size=(64, 64), base=256, image=np.zeros((64, 64, 3), np.float32), refs=refs, order=(0, 1),
        layer_masks=(np.zeros((64, 64), bool),) * 2, boxes=((0, 0, 32, 48), (16, 32, 64, 64)), token_boxes=tuple(BOXES),
    )


def test_plan_tokens_builds_both():
    tokens, masks = build_tokens(make_plan(), 2, "paper")
    assert tokens.seq_len == 42 and tokens.ref_grids == ((2, 2), (2, 2))
    np.testing.assert_array_equal(masks.dense("ica"), literal(PAP_A, PAP_B, PAP_X))
    assert masks.ica_mode == "paper"


def test_write_dump_round_trip(tmp_path):
    tokens, masks = build_tokens(make_plan(), 2, "official")
    target = tmp_path / "tokens.npz"
    target.write_bytes(b"old")
    write_dump(target, tokens, masks)
    write_dump(tmp_path, tokens, masks)  # a folder gets tokens.npz inside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.npz"]  # replaced, no temp file left
    with np.load(target) as z:
        assert sorted(z.files) == ["ids", "mask_cla", "mask_ica", "seg_bounds", "seg_names", "text_len"]
        assert z["ids"].dtype == np.float32 and z["ids"].shape == (40, 3)
        np.testing.assert_array_equal(z["ids"], tokens.ids)
        assert z["seg_names"].tolist() == ["text", "main", "layout", "ref0", "ref1"]
        np.testing.assert_array_equal(z["seg_bounds"], tokens.span_bounds)
        assert int(z["text_len"]) == 2
        assert z["mask_cla"].shape == (42, 6) and z["mask_cla"].dtype == np.uint8
        np.testing.assert_array_equal(np.unpackbits(z["mask_cla"], axis=-1, count=42), literal(TML, TML, TML))
        np.testing.assert_array_equal(np.unpackbits(z["mask_ica"], axis=-1, count=42), literal(OFF_A, OFF_B, OFF_X))


def test_write_dump_unwritable_folder(tmp_path):
    tokens, masks = build_tokens(make_plan(), 2)
    with pytest.raises(OutputError, match="missing/tokens.npz: cannot write"):
        write_dump(tmp_path / "missing" / "tokens.npz", tokens, masks)
