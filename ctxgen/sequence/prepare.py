"""Model-free per-scene preparation: scene -> references -> composition -> tokens and masks (R2-R19), once per scene."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ctxgen.layout.compose import Composition, build_composition
from ctxgen.scene.images import RefImage, Segmenter, read_references, read_user_layout
from ctxgen.scene.model import Scene
from ctxgen.sequence.masks import MaskSet, build_tokens
from ctxgen.sequence.prompt import wrap_prompt
from ctxgen.sequence.tokens import TokenSequence

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class PreparedScene:
    """Everything about one scene that does not need the model."""

    scene: Scene
    refs: tuple[RefImage, ...]
    composition: Composition  # the layout image, prepared references, boxes and layer order
    tokens: TokenSequence
    masks: MaskSet
    prompt: str  # the R3-wrapped prompt sent to both text encoders


def prepare_scene(scene: Scene, text_len: int, segmenter: Segmenter | None = None) -> PreparedScene:
    """Read the references, composite the layout and build ids and masks, once per scene (R19)."""
    refs = read_references(scene, segmenter=segmenter)
    user_layout = read_user_layout(scene)
    composition = build_composition(scene, refs, user_layout)
    tokens, masks = build_tokens(composition, text_len, scene.ica)
    log.debug("scene %s: S=%d tokens, %d references", scene.source, tokens.seq_len, len(refs))
    return PreparedScene(scene, tuple(refs), composition, tokens, masks, wrap_prompt(scene.prompt))
