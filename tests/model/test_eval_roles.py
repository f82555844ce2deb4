"""Vision roles: tiny models saved in the real folder layout load through the real path and agree with the
in-memory ones; SAM box prompts; the aesthetic predictor's one-time conversion; the reference stand-ins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ctxgen.core.errors import ModelError, UserError
from ctxgen.vision import tiny
from ctxgen.vision.aesthetic import convert_weights, load_aesthetic, mlp_shapes
from ctxgen.vision.detector import caption, load_detector
from ctxgen.vision.embedder import load_embedder
from ctxgen.vision.segmenter import load_segmenter
from ctxgen.vision.vqa import load_vqa

IMAGE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 96, 3), dtype=np.uint8))


def test_detector_from_a_folder_matches_the_tiny_model_and_keeps_query_order(tmp_path):
    folder = tiny.save_tiny("grounding-dino", tmp_path / "gd")
    a = load_detector("tiny-random", "cpu", False).detect(IMAGE, "dog", 0.3, 0.25)
    b = load_detector(str(folder), "cpu", False).detect(IMAGE, "dog", 0.3, 0.25)
    assert len(a) > 0 and np.allclose(a.boxes, b.boxes, atol=1e-4)
    assert not np.all(np.diff(a.scores) <= 0) or len(a) < 3  # query order, not sorted by score
    assert caption("Red Dog") == "red dog." and caption(["dog", "cat"]) == "dog. cat."


def test_embedders_and_vqa_from_folders(tmp_path):
    for name, kind in (("dinov2", "dinov2"), ("clip", "clip")):
        folder = tiny.save_tiny(name, tmp_path / name)
        mem = load_embedder("tiny-random", "cpu", False, tiny=kind)
        disk = load_embedder(str(folder), "cpu", False)
        assert np.allclose(mem.embed([IMAGE]), disk.embed([IMAGE]), atol=1e-5)
    assert load_embedder(str(tmp_path / "dinov2"), "cpu", False).patch_features(IMAGE).shape == (256, 32)
    vqa = load_vqa(str(tiny.save_tiny("llava", tmp_path / "vqa")), "cpu", False)
    answer = vqa.ask(IMAGE, "Is there a dog?")
    assert isinstance(answer, str) and answer == vqa.ask(IMAGE, "Is there a dog?")  # greedy: deterministic


def test_folder_without_safetensors_is_refused(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="detector: .* has no \\*.safetensors"):
        load_detector(str(tmp_path / "m"), "cpu", False)


def test_sam_box_prompts_and_the_full_box_reference():
    rgb = np.asarray(IMAGE)
    masks, iou = load_segmenter("tiny-random", "cpu", False).segment(rgb, np.array([[10, 10, 50, 60], [0, 0, 96, 80]]),
                                                                      multimask=True)
    assert masks.shape == (2, 80, 96) and masks.dtype == bool and iou.shape == (2,)
    ref, _ = load_segmenter("reference", "cpu", False).segment(rgb, np.array([[10.2, 10, 50, 60]]))
    assert ref[0].sum() == 40 * 50  # x 10.2 -> pixel 10 (floor) to 50 and ref[0, 10, 10] and not ref[0, 60, 10]


def test_aesthetic_conversion_loads_weights_only(tmp_path):
    state = {k: torch.randn(*s) for k, s in mlp_shapes(16).items()}
    torch.save(state, tmp_path / "mlp.pth")
    out = convert_weights(tmp_path / "mlp.pth", tmp_path / "aes", clip="tiny-random")
    pred = load_aesthetic(str(out), "cpu", False)
    clip = load_embedder("tiny-random", "cpu", False, tiny="clip")
    feats = clip.embed([IMAGE])
    x = torch.from_numpy(feats / np.linalg.norm(feats, axis=-1, keepdims=True))
    for i in (0, 2, 4, 6, 7):
        x = x @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"]
    assert pred.score([IMAGE])[0] == pytest.approx(float(x[0, 0]), rel=1e-4)
    torch.save({"layers.0.weight": torch.zeros(3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="not the LAION aesthetic MLP"):
        convert_weights(tmp_path / "bad.pth", tmp_path / "x")
    with pytest.raises(ModelError, match="convert-aesthetic"):
        load_aesthetic(str(tmp_path / "nothing"), "cpu", False)
