"""Model-free per-scene preparation: scene -> references -> layout -> tokens and masks (R2-R19), built once per scene."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .images import RefImage, read_references, read_user_layout
from .layout import LayoutPlan, build_layout
from .masks import MaskSet, plan_tokens
from .prompt import wrap_prompt
from .scene import Instance, Scene
from .tokens import TokenLayout

log = logging.getLogger(__name__)

Segmenter = Callable[[np.ndarray, Instance], np.ndarray]


@dataclass(frozen=True)
class ScenePlan:
    """Everything about one scene that does not need the model."""

    scene: Scene
    refs: tuple[RefImage, ...]
    layout: LayoutPlan
    tokens: TokenLayout
    masks: MaskSet
    prompt: str  # the R3-wrapped prompt sent to both text encoders


def plan_scene(scene: Scene, text_len: int, segmenter: Segmenter | None = None) -> ScenePlan:
    """Read the references, composite the layout and build ids and masks, once per scene (R19)."""
    refs = read_references(scene, segmenter=segmenter)
    user_layout = read_user_layout(scene)
    layout = build_layout(scene, refs, user_layout)
    tokens, masks = plan_tokens(layout, text_len, scene.ica)
    log.debug("scene %s: S=%d tokens, %d references", scene.source, tokens.seq_len, len(refs))
    return ScenePlan(scene, tuple(refs), layout, tokens, masks, wrap_prompt(scene.prompt))
