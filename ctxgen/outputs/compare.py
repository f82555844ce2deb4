"""How far two renders of the same scene and seed differ (e.g. two memory tiers or attention kernels).

PSNR is computed here; SSIM (a perceptual, structure-based measure) comes from scikit-image, imported only
when asked for (the `metrics` extra). Torch-free.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from ctxgen.core.errors import UserError, install_hint

logger = logging.getLogger(__name__)

METRICS_INSTALL = install_hint("metrics")
DATA_RANGE = 255.0  # 8-bit images


def read_rgb(path: Path) -> np.ndarray:
    """uint8 (H, W, 3) from an image file, through the same safe opener as scene images: regular files only,
    PNG/JPEG/WebP/BMP/GIF/TIFF only, the pixel cap checked before decoding (alpha dropped, palette and grey converted)."""
    from ctxgen.scene.images import read_image_rgb

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{path}: no such file; pass two rendered images")
    return read_image_rgb(path)  # (H, W, 3)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels; inf for identical images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(DATA_RANGE**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity (scikit-image, 7x7 windows, per channel); 1.0 for identical images."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise UserError(f"compare: SSIM needs scikit-image, which is not installed; run {METRICS_INSTALL}") from None
    if min(a.shape[:2]) < 7:
        raise UserError(f"compare: images are {a.shape[1]}x{a.shape[0]}; SSIM needs at least 7x7 pixels")
    return float(structural_similarity(a, b, channel_axis=2, data_range=DATA_RANGE))


def compare_arrays(a: np.ndarray, b: np.ndarray) -> dict:
    """PSNR (dB, None when identical), SSIM and the largest / mean absolute pixel difference of two uint8 images."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))  # (H, W, 3)
    value = psnr(a, b)
    return {
        "identical": bool(diff.max() == 0),
        "psnr_db": None if math.isinf(value) else value,
        "ssim": ssim(a, b),
        "max_abs_diff": int(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "differing_pixels": float(np.mean(diff.max(axis=2) > 0)),  # fraction of pixels with any channel changed
    }


def compare_images(a: Path, b: Path) -> dict:
    """Compare two renders of the same scene and seed: size, PSNR, SSIM, max and mean absolute difference."""
    a, b = Path(a), Path(b)
    pixels_a, pixels_b = read_rgb(a), read_rgb(b)
    if pixels_a.shape != pixels_b.shape:
        raise UserError(
            f"compare: {a} is {pixels_a.shape[1]}x{pixels_a.shape[0]} but {b} is {pixels_b.shape[1]}x"
            f"{pixels_b.shape[0]}; compare two renders of the same scene"
        )
    result = {"a": str(a), "b": str(b), "size": [int(pixels_a.shape[1]), int(pixels_a.shape[0])]}
    result.update(compare_arrays(pixels_a, pixels_b))
    logger.debug("compare %s %s: %s", a, b, result)
    return result
