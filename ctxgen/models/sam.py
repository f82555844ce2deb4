"""`mask: auto` (R2): SAM 2.1 through transformers' `Sam2Model`: loading, running, caching, mask outputs.

torch and transformers are imported inside the functions that need them. The pre/post-processing lives in
`ctxgen.models.sam_processing` (transformers' Sam2 image processor needs torchvision, which is not installed).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ctxgen.core.errors import ModelError, UserError
from ctxgen.core.fsio import write_png
from ctxgen.core.hub import is_hub_id
from ctxgen.models import sam_processing as sg
from ctxgen.models.safety import refuse_pickled_indexes
from ctxgen.scene.images import Segmenter
from ctxgen.scene.model import Instance, Scene

logger = logging.getLogger(__name__)

SAM_MODELS = {
    "large": "facebook/sam2.1-hiera-large",
    "base-plus": "facebook/sam2.1-hiera-base-plus",
    "small": "facebook/sam2.1-hiera-small",
    "tiny": "facebook/sam2.1-hiera-tiny",
}
DEFAULT_SAM = "large"
RANDOM_SAM = "tiny-random"  # a tiny randomly initialised Sam2Model built offline (tests, smoke runs)
__all__ = ["DEFAULT_SAM", "RANDOM_SAM", "SAM_MODELS", "MaskCache", "build_tiny_sam", "load_sam", "make_segmenter",
           "mask_key", "needs_sam", "sam_model_id", "scene_segmenter", "segment", "write_mask_outputs"]


def _missing(hub_id: str) -> str:
    return (f"SAM 2.1 weights '{hub_id}' are not available (not in the Hugging Face cache and not downloadable): "
            f"run `hf download {hub_id}` or pass a local folder to --sam-model, "
            "or give the reference a mask file (`mask: <file>`) instead of `mask: auto`")


def _resolve(model: str) -> tuple[str, str]:
    """`--sam-model` value -> ("random" | "hub" | "local", id): a name, a hub id or a local folder (R2)."""
    if model == RANDOM_SAM:
        return "random", RANDOM_SAM
    if model in SAM_MODELS:
        return "hub", SAM_MODELS[model]
    path = Path(model).expanduser()
    if path.is_dir():
        return "local", str(path.resolve())
    if is_hub_id(model) and not path.exists():
        return "hub", model
    names = ", ".join([*SAM_MODELS, RANDOM_SAM])
    raise ModelError(f"--sam-model {model!r}: not a SAM name ({names}), a hub id or an existing folder")


def sam_model_id(model: str) -> str:
    """The id stored in mask cache keys: hub id, absolute folder path, or `tiny-random`."""
    return _resolve(model)[1]


def build_tiny_sam(seed: int = 0) -> Any:
    """A tiny random `Sam2Model` (64-pixel input, 16x16 logits) built from config, `.eval()` (tests)."""
    import torch
    from transformers import Sam2Config, Sam2Model
    from transformers.models.sam2.configuration_sam2 import (
        Sam2HieraDetConfig, Sam2MaskDecoderConfig, Sam2PromptEncoderConfig, Sam2VisionConfig)

    size = 64
    backbone = Sam2HieraDetConfig(
        hidden_size=8, num_attention_heads=1, image_size=[size, size], blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64], num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 2], global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2])
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8], fpn_hidden_size=32,
                              backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2])
    prompt = Sam2PromptEncoderConfig(hidden_size=32, image_size=size, patch_size=16, mask_input_channels=8)
    decoder = Sam2MaskDecoderConfig(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)
    # initializer_range 0.2 (not 0.02) so the random logits vary enough to give non-trivial masks
    config = Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder,
                        initializer_range=0.2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Sam2Model(config)
    return model.eval()


def _hub_folder(hub_id: str) -> Path:
    """Local snapshot of a hub id (config + safetensors); HF_HUB_OFFLINE means cache only."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    try:
        return Path(snapshot_download(hub_id, allow_patterns=["*.json", "*.safetensors"],
                                      local_files_only=offline))
    except (HfHubHTTPError, OSError, ValueError) as exc:
        logger.debug("snapshot_download(%s) failed: %s", hub_id, exc)
        raise ModelError(_missing(hub_id)) from exc


def load_sam(model: str = DEFAULT_SAM, device: Any = "cpu", dtype: Any = None) -> Any:
    """Load SAM 2.1 (name, hub id or local folder; safetensors only) as an eval `Sam2Model` (R2)."""
    import torch

    kind, ident = _resolve(model)
    dtype = torch.float32 if dtype is None else dtype
    if kind == "random":
        sam = build_tiny_sam()
    else:
        folder = _hub_folder(ident) if kind == "hub" else Path(ident)
        hub_id = ident if kind == "hub" else SAM_MODELS[DEFAULT_SAM]
        if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
            raise ModelError(f"{folder}: no config.json + *.safetensors SAM 2.1 weights (safetensors only): "
                             + _missing(hub_id))
        from transformers import Sam2Model

        refuse_pickled_indexes(folder, "SAM 2.1 folder")
        try:
            sam = Sam2Model.from_pretrained(folder, use_safetensors=True, dtype=dtype)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{folder}: not loadable as a transformers Sam2Model ({exc}); "
                             f"use `hf download {hub_id}` or `mask: <file>`") from exc
    sam = sam.to(device=device, dtype=dtype)
    logger.info("SAM 2.1 %s loaded on %s", ident, device)
    return sam.eval()


def _check_prompt(w: int, h: int, point: sg.Point | None, box: sg.PromptBox | None, where: str) -> None:
    """User prompts must lie in the reference frame (R2); one-line UserError naming the field otherwise."""
    if point is not None:
        x, y = point
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < w and 0 <= y < h):
            raise UserError(f"{where}: point [{x:g}, {y:g}] lies outside the reference ({w}x{h} pixels); "
                            "give a point inside the image")
    if box is not None:
        c1, r1, c2, r2 = sg.box_pixels(box, w, h) if all(map(math.isfinite, box)) else (0, 0, 0, 0)
        if not (box[0] < box[2] and box[1] < box[3]) or c2 <= c1 or r2 <= r1:
            raise UserError(f"{where}: prompt_box {list(box)} is empty or outside the reference ({w}x{h} "
                            "pixels); give [x1, y1, x2, y2] with x1 < x2, y1 < y2 inside the image")


def segment(model: Any, rgb: np.ndarray, point: sg.Point | None = None, box: sg.PromptBox | None = None,
            where: str = "reference") -> np.ndarray:
    """SAM 2.1 mask of the prompted subject: uint8 (h, w), 0/255 (R2; default prompt = the whole frame)."""
    import torch

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"segment expects uint8 (h, w, 3) RGB, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    _check_prompt(w, h, point, box, where)
    size = int(model.config.prompt_encoder_config.image_size)
    param = next(model.parameters())
    pixels = torch.from_numpy(sg.model_input(rgb, size))[None]  # (1, 3, S, S)
    inputs: dict[str, Any] = {"pixel_values": pixels.to(device=param.device, dtype=param.dtype)}
    if point is not None:
        inputs["input_points"] = torch.tensor([[[sg.scale_prompt(point, w, h, size)]]],
                                              device=param.device)  # (1, 1, 1, 2)
        inputs["input_labels"] = torch.ones((1, 1, 1), dtype=torch.long, device=param.device)
    prompt_box = box if box is not None or point is not None else sg.frame_box(w, h)
    if prompt_box is not None:
        inputs["input_boxes"] = torch.tensor([[sg.scale_prompt(prompt_box, w, h, size)]],
                                             device=param.device)  # (1, 1, 4)
    with torch.inference_mode():
        out = model(multimask_output=True, **inputs)
    logits = out.pred_masks[0, 0].float().cpu().numpy()  # (3, S/4, S/4)
    iou = out.iou_scores[0, 0].float().cpu().numpy()  # (3,)
    k, best = sg.best_mask(logits, iou)
    fg = sg.upsample_logits(best, h, w) > 0.0
    mask = sg.fill_holes(sg.component_under_prompt(fg, point=point, box=prompt_box))
    logger.debug("SAM %s: output %d of %d (IoU %.3f), %d foreground pixels", where, k, len(iou), iou[k],
                 int(mask.sum()))
    if not mask.any():
        logger.warning("%s: SAM found no subject for this prompt; the mask is empty", where)
    return mask.astype(np.uint8) * np.uint8(255)


def mask_key(rgb: np.ndarray, point: sg.Point | None, box: sg.PromptBox | None, model_id: str) -> str:
    """Cache key: sha256 of (sha256 of the pixels and their shape, the prompt, the model id)."""
    pixels = hashlib.sha256(f"{rgb.shape}{rgb.dtype}".encode())
    pixels.update(np.ascontiguousarray(rgb).tobytes())
    if point is not None or box is not None:
        prompt = f"point={None if point is None else tuple(map(float, point))!r};" \
                 f"box={None if box is None else tuple(map(float, box))!r}"
    else:
        prompt = "frame"
    return hashlib.sha256(f"{pixels.hexdigest()}|{prompt}|{model_id}".encode()).hexdigest()


class MaskCache:
    """Computed masks as `<root>/<key>.png` (L, 0/255), so renders do not run SAM again."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.png"

    def get(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        """The cached uint8 (h, w) mask, or None when absent, unreadable or of another shape."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with Image.open(path) as img:
                mask = np.asarray(img.convert("L"), dtype=np.uint8)
        except (OSError, ValueError) as exc:
            logger.warning("%s: unreadable cached mask, recomputing (%s)", path, exc)
            return None
        if mask.shape != tuple(shape):
            logger.warning("%s: cached mask is %s, expected %s; recomputing", path, mask.shape, tuple(shape))
            return None
        return mask

    def put(self, key: str, mask: np.ndarray) -> Path:
        path = self.path(key)
        write_png(path, Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8)))
        return path


def make_segmenter(model_id: str = DEFAULT_SAM, device: Any = "cpu", cache_root: Path | None = None, *,
                   dtype: Any = None, loader: Callable[..., Any] | None = None) -> Segmenter:
    """`(rgb, instance) -> uint8 mask` for `mask: auto`: cache first, SAM loaded lazily on the first miss (R2)."""
    ident = sam_model_id(model_id)
    cache = MaskCache(cache_root) if cache_root is not None else None
    load = loader if loader is not None else load_sam
    state: dict[str, Any] = {}

    def run(rgb: np.ndarray, inst: Instance) -> np.ndarray:
        key = mask_key(rgb, inst.point, inst.prompt_box, ident)
        if cache is not None and (hit := cache.get(key, rgb.shape[:2])) is not None:
            logger.debug("%s: SAM mask from cache %s", inst.image, cache.path(key))
            return hit
        if "model" not in state:
            state["model"] = load(model_id, device, dtype)
        mask = segment(state["model"], rgb, point=inst.point, box=inst.prompt_box, where=str(inst.image))
        if cache is not None:
            cache.put(key, mask)
        return mask

    return run


def write_mask_outputs(rgb: np.ndarray, mask: np.ndarray, out: Path, point: sg.Point | None = None,
                       box: sg.PromptBox | None = None) -> tuple[Path, Path]:
    """Write the mask (L PNG, usable as `mask: <file>`) and `<stem>.preview.png` for the user to check."""
    out = Path(out)
    preview_path = out.with_name(f"{out.stem}.preview.png")
    fg = np.asarray(mask) >= 128
    h, w = fg.shape
    width = max(1, round(min(h, w) / 256))
    img = rgb.astype(np.float32) * 0.45  # (h, w, 3): background dimmed
    img[fg] = rgb[fg].astype(np.float32) * 0.65 + np.float32([30, 144, 255]) * 0.35  # subject tinted blue
    img[sg.outline(fg, width)] = (255, 220, 0)
    preview = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(preview)
    if box is not None:
        draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=(255, 40, 40), width=width + 1)
    if point is not None:
        r = max(4, min(h, w) // 60)
        draw.ellipse([point[0] - r, point[1] - r, point[0] + r, point[1] + r], fill=(255, 40, 40),
                     outline=(255, 255, 255), width=max(1, r // 3))
    write_png(out, Image.fromarray(np.where(fg, 255, 0).astype(np.uint8)))
    write_png(preview_path, preview)
    return out, preview_path


def needs_sam(scene: Scene) -> bool:
    return any(inst.mask_mode == "auto" for inst in scene.instances)


def scene_segmenter(scene: Scene, sam_model: str, device: str, cache_root: Path) -> Segmenter | None:
    """A SAM 2 segmenter for scenes with `mask: auto`, else None (SAM is loaded lazily, on first use)."""
    if not needs_sam(scene):
        return None
    from ctxgen.models.loading import resolve_device

    return make_segmenter(sam_model, str(resolve_device(device)), cache_root)
