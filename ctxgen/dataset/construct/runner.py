"""One worker's side of a stage: the task (item id + key), the stage module, and the item runner that loads the
stage's models once and runs, writes and logs items one at a time (one failing item never stops the others)."""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxgen.core.errors import describe
from ctxgen.dataset.construct.config import ConstructConfig
from ctxgen.dataset.construct.models import STAGE_ROLES
from ctxgen.dataset.construct.store import StageStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    id: str
    key: str


def stage_module(stage: str) -> Any:
    return importlib.import_module(f"ctxgen.dataset.construct.{stage}")


class ItemRunner:
    """Runs items of one stage with one set of models (one per worker): run, write, and the manifest entry."""

    def __init__(self, cfg: ConstructConfig, run: Path, stage: str, device: str):
        from ctxgen.dataset.construct.context import Context
        from ctxgen.dataset.construct.models import StageModels

        models = StageModels(cfg.models, device, cfg.dtype) if STAGE_ROLES[stage] else None
        self.ctx = Context(cfg, Path(run), stage, models)
        self.store, self.module, self.stage = StageStore(run, stage), stage_module(stage), stage

    def __call__(self, task: Task) -> dict:
        t0 = time.perf_counter()
        entry = {"stage": self.stage, "item": task.id, "key": task.key}
        try:
            up = self.ctx.done(self.module.UPSTREAM, task.id)
            item = self.module.run(self.ctx, up)
            self.store.write(item, task.key)
            entry.update(status="ok", kept=item.kept, reason=item.reason)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one bad item is logged; the stage goes on
            log.debug("%s/%s failed", self.stage, task.id, exc_info=True)
            entry.update(status="failed", kept=False, error=describe(exc))
        entry["seconds"] = round(time.perf_counter() - t0, 4)
        return entry
