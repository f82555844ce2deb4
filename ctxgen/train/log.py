"""The run log: one JSON line per logged step in RUN/log.jsonl, and TensorBoard scalars when it is installed."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from pathlib import Path
from typing import Any

from ctxgen.core.errors import UsageError, install_hint
from ctxgen.core.fsio import write_text
from ctxgen.train.plot import LOG_NAME, read_log

log = logging.getLogger(__name__)


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else repr(value)


class RunLog:
    """Appends step records (main process only); on resume, records after the checkpoint's step are dropped."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: str = "auto", resume_step: int | None = None):
        self.path = run_dir / LOG_NAME
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        if resume_step is not None and self.path.is_file():  # the steps after the checkpoint will be logged again
            kept = [r for r in read_log(self.path) if int(r.get("step", 0)) <= resume_step]
            write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
        elif resume_step is None and self.path.is_file():
            write_text(self.path, "")
        self.fh = open(self.path, "a", encoding="utf-8")
        have_tb = importlib.util.find_spec("tensorboard") is not None
        if tensorboard == "on" and not have_tb:
            raise UsageError(f"logging.tensorboard: on needs tensorboard; {install_hint('train')}")
        if tensorboard == "on" or (tensorboard == "auto" and have_tb):
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=(resume_step or 0) + 1)

    def write(self, record: dict[str, Any]) -> None:
        """One JSON line (flushed), and every numeric field as a TensorBoard scalar."""
        if not self.enabled:
            return
        self.fh.write(json.dumps({k: _finite(v) for k, v in record.items()}, sort_keys=True) + "\n")
        self.fh.flush()
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step" and not isinstance(value, bool):
                    self.writer.add_scalar(f"train/{key}", value, record["step"])

    def close(self) -> None:
        if self.enabled:
            self.fh.close()
            if self.writer is not None:
                self.writer.close()
