"""`mask: auto` (R2) with a tiny random Sam2Model: the real code path, cache, loading errors, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ctxgen.models import sam_processing as sg
from ctxgen.core.errors import ModelError, UserError
from ctxgen.scene.model import Instance
from ctxgen.models.sam import (
    SAM_MODELS,
    MaskCache,
    build_tiny_sam,
    load_sam,
    make_segmenter,
    mask_key,
    sam_model_id,
    segment,
    write_mask_outputs,
)

H, W = 48, 80


@pytest.fixture(scope="module")
def sam():
    return build_tiny_sam(seed=0)


@pytest.fixture(scope="module")
def rgb():
    img = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    img[10:40, 20:60] = (200, 40, 40)  # (H, W, 3): a red subject on noise
    return img


def _instance(point=None, prompt_box=None) -> Instance:
    return Instance(index=0, image=Path("/refs/cat.png"), mask_mode="auto", mask=None, box=(0, 0, 64, 64),
                    fit="instance", point=point, prompt_box=prompt_box)


@pytest.mark.parametrize("point, box", [(None, None), ((30.5, 20.0), None), (None, (10, 5, 70, 45)),
                                        ((30.5, 20.0), (10, 5, 70, 45))])
def test_segment_shape_values_deterministic(sam, rgb, point, box):
    a = segment(sam, rgb, point=point, box=box)
    b = segment(sam, rgb, point=point, box=box)
    assert a.shape == (H, W) and a.dtype == np.uint8
    assert set(np.unique(a)) <= {0, 255}
    np.testing.assert_array_equal(a, b)
    _, n = sg.label_components(a > 0, connectivity=8)
    assert n <= 1  # one component kept


def test_segment_postprocessing_matches_transformers(sam, rgb):
    """Our numpy resize of the logits and prompt scaling equal transformers' torch versions."""
    from transformers.models.sam2.processing_sam2 import Sam2Processor

    box = (10.0, 5.0, 70.0, 45.0)
    ours = sg.scale_prompt(box, W, H, 64)
    theirs = Sam2Processor._normalize_coordinates(None, 64, torch.tensor([box]), (H, W), is_bounding_box=True)
    np.testing.assert_allclose(ours, theirs[0].numpy(), rtol=1e-6)
    pixels = torch.from_numpy(sg.model_input(rgb, 64))[None]  # (1, 3, 64, 64)
    with torch.inference_mode():
        out = sam(pixel_values=pixels, input_boxes=torch.tensor([[ours]]), multimask_output=True)
    assert tuple(out.pred_masks.shape) == (1, 1, 3, 16, 16) and tuple(out.iou_scores.shape) == (1, 1, 3)
    k = int(out.iou_scores[0, 0].argmax())
    ref = torch.nn.functional.interpolate(out.pred_masks[0, :, k:k + 1], (H, W), mode="bilinear",
                                          align_corners=False)[0, 0].numpy()  # (H, W)
    np.testing.assert_allclose(sg.upsample_logits(out.pred_masks[0, 0, k].numpy(), H, W), ref, atol=1e-5)
    expected = sg.fill_holes(sg.component_under_prompt(ref > 0, box=box))
    np.testing.assert_array_equal(segment(sam, rgb, box=box) > 0, expected)


def test_prompt_outside_image_is_user_error(sam, rgb):
    with pytest.raises(UserError, match=r"cat\.png: point \[80, 3\] lies outside"):
        segment(sam, rgb, point=(80, 3), where="cat.png")
    with pytest.raises(UserError, match="prompt_box"):
        segment(sam, rgb, box=(90, 0, 100, 10))
    with pytest.raises(UserError, match="prompt_box"):
        segment(sam, rgb, box=(30, 10, 20, 40))


def test_keys_differ_by_prompt_image_and_model(rgb):
    frame = mask_key(rgb, None, None, "m")
    point = mask_key(rgb, (10, 20), None, "m")
    box = mask_key(rgb, None, (10, 20, 30, 40), "m")
    assert len({frame, point, box}) == 3
    assert mask_key(rgb, (10.0, 20.0), None, "m") == point
    assert mask_key(rgb, (10, 20), None, "other") != point
    changed = rgb.copy()
    changed[0, 0, 0] ^= 1
    assert mask_key(changed, (10, 20), None, "m") != point


def test_segmenter_cache_hit_skips_model(tmp_path, rgb):
    loads, forwards = [], []

    def loader(model_id, device, dtype):
        loads.append((model_id, device))
        model = build_tiny_sam(seed=0)
        model.register_forward_hook(lambda *args: forwards.append(1))
        return model

    run = make_segmenter("tiny-random", "cpu", tmp_path / "masks", loader=loader)
    assert loads == []  # lazy
    first = run(rgb, _instance(point=(30.0, 20.0)))
    assert (len(loads), len(forwards)) == (1, 1)
    assert len(list((tmp_path / "masks").glob("*.png"))) == 1
    again = make_segmenter("tiny-random", "cpu", tmp_path / "masks", loader=loader)(rgb, _instance(point=(30, 20)))
    np.testing.assert_array_equal(again, first)
    assert (len(loads), len(forwards)) == (1, 1)  # a fresh segmenter hits the cache: no load, no forward
    run(rgb, _instance(prompt_box=(10, 5, 70, 45)))
    assert (len(loads), len(forwards)) == (1, 2)  # another prompt: same model, one more forward
    assert len(list((tmp_path / "masks").glob("*"))) == 2  # no temp files left behind


def test_cache_rejects_wrong_shape_and_garbage(tmp_path):
    cache = MaskCache(tmp_path)
    cache.put("k", np.full((4, 6), 255, np.uint8))
    assert cache.get("k", (4, 6)).tolist() == [[255] * 6] * 4
    assert cache.get("k", (6, 4)) is None
    cache.path("bad").write_bytes(b"not a png")
    assert cache.get("bad", (4, 6)) is None
    assert cache.get("absent", (4, 6)) is None


def test_model_ids_and_unknown_name(tmp_path):
    assert SAM_MODELS["large"] == "facebook/sam2.1-hiera-large"
    assert set(SAM_MODELS) == {"large", "base-plus", "small", "tiny"}
    assert sam_model_id("small") == "facebook/sam2.1-hiera-small"
    assert sam_model_id(str(tmp_path)) == str(tmp_path.resolve())
    with pytest.raises(ModelError, match="not a SAM name"):
        sam_model_id("huge")


def test_missing_weights_message(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelError) as err:
        load_sam("tiny")
    msg = str(err.value)
    assert "\n" not in msg
    assert "facebook/sam2.1-hiera-tiny" in msg and "`hf download facebook/sam2.1-hiera-tiny`" in msg
    assert "mask: <file>" in msg


def test_local_folder_safetensors_only(tmp_path, sam, rgb):
    sam.save_pretrained(tmp_path / "ok")
    loaded = load_sam(str(tmp_path / "ok"))
    np.testing.assert_array_equal(segment(loaded, rgb, point=(30, 20)), segment(sam, rgb, point=(30, 20)))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps(sam.config.to_dict()))
    (pickled / "pytorch_model.bin").write_bytes(b"\0")
    with pytest.raises(ModelError, match="safetensors only"):
        load_sam(str(pickled))


def test_write_mask_outputs(tmp_path, rgb):
    mask = np.zeros((H, W), np.uint8)
    mask[10:40, 20:60] = 255
    mask_path, preview_path = write_mask_outputs(rgb, mask, tmp_path / "out" / "cat.mask.png",
                                                 point=(40, 25), box=(15, 5, 65, 45))
    assert mask_path == tmp_path / "out" / "cat.mask.png"
    assert preview_path == tmp_path / "out" / "cat.mask.preview.png"
    with Image.open(mask_path) as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), mask)
    with Image.open(preview_path) as img:
        preview = np.asarray(img.convert("RGB"))
    assert preview.shape == (H, W, 3)
    assert tuple(preview[10, 30]) == (255, 220, 0)  # outline on the subject's top edge
    assert tuple(preview[25, 40]) == (255, 40, 40)  # the prompt point
    np.testing.assert_array_equal(preview[0, 0], np.rint(rgb[0, 0] * 0.45))  # dimmed background
