"""A dataset record + its drawn augmentations -> one training example (T2), through the inference stages.

The target is stretched to the canvas; boxes are scaled (by the height factor, the published quirk, unless
`box_scale: axes`); references are prepared the published training way (`references.py`); placement (R9),
layering (R11), stacking (R10), the token sequence and the CLA/ICA masks (R13-R17) and the prompt template (R3)
are the layout and sequence stages' own functions. Torch-free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ctxgen.dataset.record import ImageData, InstanceRecord, Record
from ctxgen.layout.compose import Composition, canvas_mask, place_layer, stack_layers, user_layout_image
from ctxgen.layout.geometry import drawn_box, pixel_box, token_box
from ctxgen.layout.layering import layer_order
from ctxgen.sequence.masks import MaskSet, build_tokens
from ctxgen.sequence.prompt import wrap_prompt
from ctxgen.sequence.tokens import TokenSequence
from ctxgen.train.randomness import Choices
from ctxgen.train.references import TrainingRef, decode_reference, stretch, training_reference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExampleOptions:
    """What decides how a record becomes an example (the config's `data` section, resolved)."""

    canvas: tuple[int, int]  # W, H
    reference_area: int  # R
    text_len: int  # T
    box_scale: str = "height"  # "height" (published) | "axes"
    ica: str = "official"


@dataclass(frozen=True)
class TrainingExample:
    """Everything about one example that needs no model: the training input's pixels, tokens and masks."""

    record_id: str
    subset: str
    prompt: str  # R3-wrapped (after caption dropout)
    target_image: ImageData  # the target as stored (decoded only when its latents are not cached)
    rejected_image: ImageData | None  # the record's stored rejected image, if any
    composition: Composition  # layout image, prepared references, boxes, order (R9-R12)
    tokens: TokenSequence  # R13-R14
    masks: MaskSet  # R15-R17
    choices: Choices
    dropped: tuple[int, ...] = ()  # instances left out: their box is empty on the canvas
    ref_keys: tuple[str, ...] = ()  # per prepared reference: record id / instance / variant (a latent cache key)

    def target(self) -> np.ndarray:
        """float32 (H, W, 3) in [-1, 1]: the target stretched to the canvas (T2; x0 after the VAE)."""
        return stretch(self.target_image, self.composition.size)

    def rejected(self) -> np.ndarray | None:
        """float32 (H, W, 3): the stored rejected image stretched to the canvas, or None."""
        return None if self.rejected_image is None else stretch(self.rejected_image, self.composition.size)


def _variant(inst: InstanceRecord, variant: str) -> tuple:
    """(image, mask, fit) of one instance's drawn variant (T2: image fit; instance fit for a repainted reference
    that has a valid box)."""
    if variant == "face":
        return inst.face_image, None, "image"
    if variant == "enhanced":
        return inst.enhanced_image, inst.enhanced_mask, "instance" if inst.valid_box is not None else "image"
    return inst.image, inst.mask, "image"


def _scaled(box, factors: tuple[float, float]) -> tuple[float, float, float, float]:
    fx, fy = factors
    return (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy)


def build_example(rec: Record, choices: Choices, opts: ExampleOptions) -> TrainingExample:
    """T2 for one record: canvas target, training references, auto (or user) layout, tokens, masks, prompt."""
    W, H = opts.canvas
    tw, th = rec.target.size()
    factors = (H / th, H / th) if opts.box_scale == "height" else (W / tw, H / th)
    kept, dropped = [], []
    for k, inst in enumerate(rec.instances):
        box = _scaled(inst.box, factors)
        x1, y1, x2, y2 = pixel_box(box, W, H)
        (kept if x2 > x1 and y2 > y1 else dropped).append(k)
    if dropped:
        log.debug("%s: instances %s fall outside the %dx%d canvas and are left out", rec.id, dropped, W, H)
    refs: list[TrainingRef] = []
    layers = []
    for n, k in enumerate(kept):
        inst = rec.instances[k]
        image, mask, fit = _variant(inst, choices.variants[k])
        rgb, alpha = decode_reference(image, mask, f"{rec.id} instances[{k}]")
        ref = training_reference(n, rgb, alpha, opts.reference_area)
        refs.append(ref)
        box = _scaled(inst.box, factors)
        layers.append(place_layer(ref.raw, ref.mask, drawn_box(box), fit, (W, H), f"{rec.id} instance {k}"))
    boxes = [_scaled(rec.instances[k].box, factors) for k in kept]
    if rec.layout is not None:  # R12: the record's own layout; no placement, no layering
        image, order = user_layout_image(rec.layout.decode(), (W, H)), ()
        layer_masks = tuple(np.zeros((H, W), dtype=bool) for _ in kept)
    else:
        layer_masks = tuple(canvas_mask(layer, (W, H)) for layer in layers)
        order = layer_order(layer_masks, [rec.instances[k].z for k in kept], choices.layer_seed)
        image = stack_layers(layers, order, (W, H))
    comp = Composition(size=(W, H), base=opts.reference_area, image=image, refs=tuple(r.prepared for r in refs),
                       order=order, layer_masks=layer_masks, boxes=tuple(pixel_box(b, W, H) for b in boxes),
                       token_boxes=tuple(token_box(b, W, H) for b in boxes))
    tokens, masks = build_tokens(comp, opts.text_len, rec.ica or opts.ica)
    prompt = wrap_prompt("" if choices.drop_caption else rec.prompt)
    keys = tuple(f"{rec.id}/{k}/{choices.variants[k]}" for k in kept)
    return TrainingExample(rec.id, rec.subset, prompt, rec.target, rec.rejected, comp, tokens, masks, choices,
                           tuple(dropped), keys)
