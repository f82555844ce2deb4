"""What a stage function sees for one item: the config, the run folder, earlier stages' items, its models, seeds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctxgen.dataset.construct.config import ConstructConfig
from ctxgen.dataset.construct.store import Done, StageStore


class MissingInput(Exception):
    """An earlier stage's item this item needs is not there (that stage has not finished it)."""


@dataclass
class Context:
    cfg: ConstructConfig
    run: Path
    stage: str
    models: Any = None  # StageModels (None for stages without models)

    def done(self, stage: str, item_id: str) -> Done:
        found = StageStore(self.run, stage).done(item_id)
        if found is None:
            raise MissingInput(f"{stage}/{item_id} is missing; run `ctxgen dataset construct {stage}` first")
        return found

    def seed(self, item_id: str, *extra: object) -> int:
        """A seed that depends only on the config seed, the stage, the item and `extra` (resumable, any worker)."""
        text = ":".join(str(v) for v in (self.cfg.seed, self.stage, item_id, *extra))
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")

    def rng(self, item_id: str, *extra: object) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(self.seed(item_id, *extra)))

    def torch_generator(self, item_id: str, *extra: object) -> Any:
        import torch

        return torch.Generator("cpu").manual_seed(self.seed(item_id, *extra))
