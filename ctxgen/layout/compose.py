"""Stage 2: Scene + reference pixels -> the composition: layout image, prepared references, boxes, layer order.

R4-R12 (docs/spec.md). Torch-free. The "layout image" is what the model sees as its layout tokens: the
references placed in their boxes and stacked (R9-R11), or the user's own RGBA layout (R12).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ctxgen.core.pictures import to_uint8
from ctxgen.core.units import TOKEN
from ctxgen.layout.geometry import (
    IntBox,
    base_size,
    bilinear_resize,
    drawn_box,
    paste,
    paste_window,
    pixel_box,
    place,
    resize_dims,
    tight_box,
    token_box,
)
from ctxgen.layout.layering import layer_order
from ctxgen.scene.images import RefImage
from ctxgen.scene.model import Scene


@dataclass(frozen=True)
class PreparedRef:
    """A reference after R5-R7, ready for the VAE and the token sequence."""

    index: int
    pixels: np.ndarray  # float32 (h, w, 3) in [-1, 1], already image*mask (background 0.0), R6
    mask: np.ndarray  # bool (h, w), binarized at >=128 after the R5 resize
    token_mask: np.ndarray  # bool (th, tw) = R7 token mask m_n

    @property
    def size(self) -> tuple[int, int]:  # (w, h) in pixels, multiples of 16
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def grid(self) -> tuple[int, int]:  # (th, tw) tokens
        return self.token_mask.shape


@dataclass(frozen=True)
class Composition:
    """Everything the token sequence and the model need from the layout stage."""

    size: tuple[int, int]  # W, H
    base: int  # R4 reference base size
    image: np.ndarray  # float32 (H, W, 3) in [-1, 1]: the composite layout (R10) or the user layout (R12)
    refs: tuple[PreparedRef, ...]  # scene order
    order: tuple[int, ...]  # instance indices bottom -> top (R11); empty for a user layout
    layer_masks: tuple[np.ndarray, ...]  # bool (H, W) placed mask per instance (scene order); all False for R12
    boxes: tuple[tuple[int, int, int, int], ...]  # pixel boxes clipped to the canvas, scene order (R8)
    token_boxes: tuple[tuple[int, int, int, int], ...]  # (x1t, y1t, x2t, y2t) end-exclusive, R8


@dataclass(frozen=True)
class PlacedLayer:
    """One reference placed by R9: the resized crop, its hard mask, and the canvas point under its centre."""

    image: np.ndarray  # float32 (h', w', 3) in [-1, 1], raw (unmasked) reference pixels
    mask: np.ndarray  # bool (h', w') = resized mask > 0
    anchor: tuple[int, int]  # (cy, cx) on the canvas


def to_unit(rgb_u8: np.ndarray) -> np.ndarray:
    """R6: uint8 RGB -> float32 [-1, 1] exactly as diffusers' image processor computes it."""
    return np.asarray(rgb_u8, dtype=np.float32) / np.float32(255.0) * np.float32(2.0) - np.float32(1.0)


def prepare_reference(ref: RefImage, base: int) -> tuple[PreparedRef, np.ndarray]:
    """R5-R7: resize (BICUBIC), masked pixels, binarized mask, token mask; also the raw [-1,1] image for R9."""
    if ref.rgb.shape[:2] != ref.mask.shape:
        raise ValueError(f"reference {ref.index}: rgb {ref.rgb.shape} and mask {ref.mask.shape} differ in size")
    h, w = ref.mask.shape
    new_w, new_h = resize_dims(w, h, base)
    rgb = Image.fromarray(ref.rgb, "RGB").resize((new_w, new_h), Image.Resampling.BICUBIC)
    mask_l = Image.fromarray(ref.mask, "L").resize((new_w, new_h), Image.Resampling.BICUBIC)
    raw = to_unit(np.asarray(rgb))  # (h, w, 3) float32
    mask = np.asarray(mask_l) >= 128  # (h, w) bool, R6
    pixels = np.where(mask[:, :, None], raw, np.float32(0.0))  # (h, w, 3) float32
    token_l = mask_l.resize((new_w // TOKEN, new_h // TOKEN), Image.Resampling.BICUBIC)
    token_mask = np.asarray(token_l) > 0  # (th, tw) bool, R7
    return PreparedRef(ref.index, pixels, mask, token_mask), raw


def place_layer(raw: np.ndarray, mask: np.ndarray, box: IntBox, fit: str, canvas_wh: tuple[int, int],
                what: str = "reference") -> PlacedLayer | None:
    """R9: crop the tight foreground box, resize image and mask bilinearly, anchor per fit mode; None if empty."""
    tight = tight_box(mask)
    spot = place(fit, mask.shape, tight, box, canvas_wh, what)
    if spot is None:
        return None
    x1, y1, x2, y2 = tight
    out_h, out_w = spot.size
    image = bilinear_resize(raw[y1:y2, x1:x2], out_h, out_w)  # (h', w', 3)
    layer_mask = bilinear_resize(mask[y1:y2, x1:x2].astype(np.float32), out_h, out_w) > 0  # (h', w')
    return PlacedLayer(image, layer_mask, spot.anchor)


def canvas_mask(layer: PlacedLayer | None, canvas_wh: tuple[int, int]) -> np.ndarray:
    """The layer's hard mask on the full canvas (all False for a skipped layer)."""
    W, H = canvas_wh
    full = np.zeros((H, W), dtype=bool)
    if layer is not None:
        win = paste_window(layer.mask.shape, layer.anchor, (H, W))
        if win is not None:
            full[win[0]] = layer.mask[win[1]]
    return full


def stack_layers(layers: Sequence[PlacedLayer | None], order: Sequence[int], canvas_wh: tuple[int, int]
                 ) -> np.ndarray:
    """R10: paste layers bottom -> top with hard masks onto a 0.0 (mid-grey) canvas."""
    W, H = canvas_wh
    canvas = np.zeros((H, W, 3), dtype=np.float32)
    covered = np.zeros((H, W), dtype=bool)
    for i in order:
        if layers[i] is not None:
            paste(canvas, covered, layers[i].image, layers[i].mask, layers[i].anchor)
    return canvas


def user_layout_image(rgba: np.ndarray, canvas_wh: tuple[int, int]) -> np.ndarray:
    """R12: RGBA -> W x H (colour LANCZOS, alpha NEAREST); alpha >= 128 keeps the colour, else 0.0."""
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"user layout must be uint8 (h, w, 4), got {rgba.dtype} {rgba.shape}")
    colour = Image.fromarray(np.ascontiguousarray(rgba[:, :, :3]), "RGB").resize(canvas_wh, Image.Resampling.LANCZOS)
    alpha = Image.fromarray(np.ascontiguousarray(rgba[:, :, 3]), "L").resize(canvas_wh, Image.Resampling.NEAREST)
    keep = np.asarray(alpha) >= 128  # (H, W) bool
    return np.where(keep[:, :, None], to_unit(np.asarray(colour)), np.float32(0.0))  # (H, W, 3) float32


def build_composition(scene: Scene, refs: Sequence[RefImage], user_layout: np.ndarray | None = None, *,
                      prepare: Callable[[RefImage, int], tuple[PreparedRef, np.ndarray]] = prepare_reference
                      ) -> Composition:
    """R4-R12: prepare the references, place and order them (or take the user layout) into a Composition.

    Placement uses each box as drawn (R9); only the canvas clips the pasted pixels. The token boxes and the
    boxes kept in the Composition are clipped to the canvas (R8). `prepare` is R5-R7 for one reference; a caller
    that composes the same references again and again (the editor, after every edit) passes a memoised one.
    """
    W, H = scene.size
    if [r.index for r in refs] != [inst.index for inst in scene.instances]:
        raise ValueError(f"build_composition: references {[r.index for r in refs]} do not match the scene's instances")
    base = base_size(W, H)
    prepared = [prepare(ref, base) for ref in refs]
    boxes = tuple(pixel_box(inst.box, W, H) for inst in scene.instances)
    token_boxes = tuple(token_box(inst.box, W, H) for inst in scene.instances)
    if user_layout is not None:
        image = user_layout_image(user_layout, (W, H))
        order: tuple[int, ...] = ()
        masks = tuple(np.zeros((H, W), dtype=bool) for _ in scene.instances)
    else:
        layers = [
            place_layer(raw, prep.mask, drawn_box(inst.placement_box), inst.fit, (W, H),
                        f"instance {inst.index} ({inst.image.name})")
            for (prep, raw), inst in zip(prepared, scene.instances)
        ]
        masks = tuple(canvas_mask(layer, (W, H)) for layer in layers)
        order = layer_order(masks, [inst.z for inst in scene.instances], scene.seeds[0])
        image = stack_layers(layers, order, (W, H))
    return Composition(
        size=(W, H), base=base, image=image, refs=tuple(p for p, _ in prepared), order=order,
        layer_masks=masks, boxes=boxes, token_boxes=token_boxes,
    )


def layout_to_pil(comp: Composition) -> Image.Image:
    """The layout image as RGB uint8: round((x + 1) * 127.5), clipped to 0..255 (round half to even)."""
    return Image.fromarray(to_uint8(comp.image), "RGB")  # (H, W, 3)
