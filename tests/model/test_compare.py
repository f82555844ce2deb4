"""compare_images: PSNR, SSIM and pixel differences between two renders (no model needed)."""

from __future__ import annotations

import builtins
import math

import numpy as np
import pytest
from PIL import Image

from ctxgen.outputs.compare import compare_arrays, compare_images, psnr
from ctxgen.core.errors import UserError


def save(path, pixels, mode="RGB"):
    Image.fromarray(pixels, mode).save(path)
    return path


@pytest.fixture()
def image():
    rng = np.random.default_rng(0)
    yy, xx = np.indices((48, 64))  # (2, H, W)
    smooth = np.stack([xx * 3, yy * 4, (xx + yy) * 2], axis=-1)  # (H, W, 3) gradients
    return np.clip(smooth + rng.integers(0, 20, smooth.shape), 0, 235).astype(np.uint8)


def test_identical_images(tmp_path, image):
    out = compare_images(save(tmp_path / "a.png", image), save(tmp_path / "b.png", image))
    assert out["identical"] and out["psnr_db"] is None and out["max_abs_diff"] == 0
    assert out["ssim"] == pytest.approx(1.0) and out["size"] == [64, 48]
    assert math.isinf(psnr(image, image))


def test_uniform_offset_has_closed_form_psnr(tmp_path, image):
    out = compare_images(save(tmp_path / "a.png", image), save(tmp_path / "b.png", image + 10))
    assert out["psnr_db"] == pytest.approx(20 * math.log10(255 / 10))  # MSE = 100
    assert out["max_abs_diff"] == 10 and out["mean_abs_diff"] == pytest.approx(10.0)
    assert out["differing_pixels"] == 1.0 and not out["identical"]


def test_more_noise_scores_lower(image):
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, image.shape)

    def noisy(sigma):
        return np.clip(image + sigma * noise, 0, 255).astype(np.uint8)

    small, large = compare_arrays(image, noisy(3)), compare_arrays(image, noisy(30))
    assert 1.0 > small["ssim"] > large["ssim"] > 0.0
    assert small["psnr_db"] > large["psnr_db"] > 0.0
    assert large["max_abs_diff"] > small["max_abs_diff"] > 0


def test_alpha_is_dropped(tmp_path, image):
    rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 7, np.uint8)], axis=-1)
    out = compare_images(save(tmp_path / "a.png", rgba, "RGBA"), save(tmp_path / "b.png", image))
    assert out["identical"]


def test_size_mismatch_and_bad_files(tmp_path, image):
    a = save(tmp_path / "a.png", image)
    with pytest.raises(UserError, match="64x48 but .*b.png is 64x47"):
        compare_images(a, save(tmp_path / "b.png", image[:-1]))
    (tmp_path / "c.png").write_bytes(b"not an image")
    with pytest.raises(UserError, match="c.png: not a readable image"):
        compare_images(a, tmp_path / "c.png")
    with pytest.raises(UserError, match="missing.png: no such file"):
        compare_images(a, tmp_path / "missing.png")


def test_missing_scikit_image_names_the_extra(monkeypatch, image):
    real_import = builtins.__import__

    def no_skimage(name, *args, **kwargs):
        if name.startswith("skimage"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skimage)
    with pytest.raises(UserError, match=r'pip install -e "\.\[metrics\]"'):
        compare_arrays(image, image)
