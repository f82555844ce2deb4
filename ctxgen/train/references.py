"""The training-time reference preprocessing of the published data loader (T2), which differs from inference (R4-R7).

Each reference goes to area R² with its aspect kept (`round`, LANCZOS); the layout is composited from that image;
the VAE path floors each side of it to a multiple of 16 (LANCZOS again). The R6 pixels and the R7 token mask are
then formed as at inference. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ctxgen.core.errors import UserError
from ctxgen.core.units import TOKEN
from ctxgen.dataset.record import ImageData
from ctxgen.layout.compose import PreparedRef, to_unit  # R6's [-1, 1] arithmetic, kept in one place

LANCZOS = Image.Resampling.LANCZOS


@dataclass(frozen=True)
class TrainingRef:
    """One reference as the published loader prepares it: the VAE-side PreparedRef and the layout-side image."""

    prepared: PreparedRef  # floored to 16 px: pixels (R6), mask, token mask (R7)
    raw: np.ndarray  # float32 (ah, aw, 3) in [-1, 1] at area R², unmasked: what R9 places
    mask: np.ndarray  # bool (ah, aw) at area R² (>= 128): the layout mask


def area_size(w: int, h: int, area: int) -> tuple[int, int]:
    """T2: (w', h') with w'·h' ≈ area², aspect kept, each side rounded (published `round`) and at least 1."""
    k = math.sqrt(area * area / (w * h))
    return max(1, round(w * k)), max(1, round(h * k))


def floor16(n: int) -> int:
    """T2: a side floored to a multiple of 16 (at least one token; the published code would reach 0 below 16)."""
    return max(TOKEN, n // TOKEN * TOKEN)


def decode_reference(image: ImageData, mask: ImageData | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A record's reference as uint8 RGB (h, w, 3) and an L mask (h, w): the mask file, else the alpha (R2)."""
    pixels = image.decode()  # (h, w, 3|4)
    if mask is not None:
        alpha = mask.decode_mask()  # (h, w)
    elif pixels.shape[2] == 4:
        alpha = pixels[..., 3]  # (h, w)
    else:
        raise UserError(f"{what}: {image.name} has no alpha channel and no mask; run `ctxgen dataset validate`")
    if alpha.shape != pixels.shape[:2]:
        raise UserError(f"{what}: mask {alpha.shape[1]}x{alpha.shape[0]} does not match {image.name} "
                        f"{pixels.shape[1]}x{pixels.shape[0]}; run `ctxgen dataset validate`")
    return np.ascontiguousarray(pixels[..., :3]), np.ascontiguousarray(alpha)


def training_reference(index: int, rgb: np.ndarray, mask: np.ndarray, area: int) -> TrainingRef:
    """T2: area R² (round, LANCZOS) for the layout; floored to 16 px (LANCZOS) for the VAE; R6/R7 on the latter."""
    h, w = mask.shape
    aw, ah = area_size(w, h, area)
    rgb_a = Image.fromarray(rgb, "RGB").resize((aw, ah), LANCZOS)
    mask_a = Image.fromarray(mask, "L").resize((aw, ah), LANCZOS)
    vw, vh = floor16(aw), floor16(ah)
    rgb_v, mask_v = rgb_a.resize((vw, vh), LANCZOS), mask_a.resize((vw, vh), LANCZOS)
    hard_v = np.asarray(mask_v) >= 128  # (vh, vw) bool, R6
    pixels = np.where(hard_v[:, :, None], to_unit(np.asarray(rgb_v)), np.float32(0.0))  # (vh, vw, 3) R6
    token = np.asarray(mask_v.resize((vw // TOKEN, vh // TOKEN), Image.Resampling.BICUBIC)) > 0  # (th, tw) R7
    prepared = PreparedRef(index, pixels.astype(np.float32), hard_v, token)
    return TrainingRef(prepared, to_unit(np.asarray(rgb_a)), np.asarray(mask_a) >= 128)


def stretch(image: ImageData, canvas: tuple[int, int]) -> np.ndarray:
    """T2: an image stretched to the canvas (W, H) with LANCZOS, as float32 (H, W, 3) in [-1, 1] (R6 arithmetic)."""
    rgb = np.ascontiguousarray(image.decode()[..., :3])  # (h, w, 3)
    resized = Image.fromarray(rgb, "RGB")
    if resized.size != tuple(canvas):
        resized = resized.resize(tuple(canvas), LANCZOS)
    return to_unit(np.asarray(resized))  # (H, W, 3)
