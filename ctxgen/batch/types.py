"""The batch engine's shared types: options, work items, the checked batch, records and the event sink.

Everything else in `ctxgen.batch` builds on this module; the backends (serial, pool, ray) depend on it and on
`job`, never on each other. The engine never prints: it hands Records and notices to a `BatchEvents`, and the
command line decides how to show them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from ctxgen.core.errors import ModelError, UsageError
from ctxgen.core.options import MAX_SEED, RenderOptions, check_seed
from ctxgen.models.registry import ModelIdentity

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = ("local", "ray")
Status = Literal["ok", "skipped", "failed"]
MAX_SAMPLES = 10_000  # images per scene in one run


@dataclass(frozen=True)
class BatchOptions:
    """Everything `ctxgen render` was asked to do, shared by every worker."""

    out: Path = Path("outputs")
    model: str | None = None  # preset name
    base: str | None = None  # overrides the preset's base
    adapter: str | None = None  # overrides the preset's adapter ("none" = base only)
    render: RenderOptions = field(default_factory=RenderOptions)
    seeds: tuple[int, ...] = ()  # override the scenes' seeds
    samples: int = 1
    device: str = "auto"
    overlays: bool = True
    force: bool = False
    manifest: Path | None = None
    fail_fast: bool = False
    sam_model: str = "large"
    devices: str | None = None  # --devices: None = one worker on --device
    backend: str = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.samples <= MAX_SAMPLES:
            raise UsageError(f"--samples: must be 1..{MAX_SAMPLES}, got {self.samples}")
        for seed in self.seeds:
            check_seed(seed)
        if self.seeds and max(self.seeds) + self.samples - 1 > MAX_SEED:
            raise UsageError(f"--seed {max(self.seeds)} with --samples {self.samples} counts past 2^64-1; "
                             "use a smaller seed")


@dataclass(frozen=True)
class WorkItem:
    """One scene to render and the folder its outputs go to."""

    index: int
    path: Path
    out_dir: Path


@dataclass(frozen=True)
class Batch:
    """The checked work of one call: items (this shard only), the model identity and the worker devices."""

    items: tuple[WorkItem, ...]
    identity: ModelIdentity | None  # None when the model cannot be had (see model_error)
    devices: tuple[str, ...] = ()  # empty: one in-process worker
    model_error: str | None = None  # weights missing or unusable: every scene fails with this message


@dataclass(frozen=True)
class Record:
    """One manifest line: the outcome of one scene and seed; the same keys for every status."""

    scene: str
    seed: int | None
    status: Status
    outputs: tuple[str, ...] = ()
    key: str | None = None
    out_dir: str | None = None
    device: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    peak_memory: int | None = None  # bytes on the accelerator, None on CPU
    peak_rss: int | None = None  # this process's peak resident memory in bytes
    error: str | None = None
    warnings: tuple[str, ...] = ()
    pid: int = 0
    time: str = ""

    @classmethod
    def make(cls, scene: Path | str, seed: int | None, status: Status, **values: Any) -> Record:
        """A record stamped with this process's pid, peak RSS and the current time."""
        values = {k: tuple(v) if k in ("outputs", "warnings") else v for k, v in values.items()}
        return cls(scene=str(scene), seed=seed, status=status, peak_rss=_peak_rss(), pid=os.getpid(),
                   time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **values)

    def with_(self, **changes: Any) -> Record:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outputs"], d["warnings"] = list(self.outputs), list(self.warnings)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["outputs"] = tuple(values.get("outputs") or ())
        values["warnings"] = tuple(values.get("warnings") or ())
        return cls(**values)


def _peak_rss() -> int | None:
    """This process's peak resident memory in bytes (the CPU counterpart of peak GPU memory)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class ModelLoadError(ModelError):
    """The model could not be loaded: fatal to the worker that tried (its scene is marked failed)."""


def _ignore(*args: Any) -> None:
    return None


@dataclass
class BatchEvents:
    """Where the engine reports: every record, each finished scene, denoising steps, notices, and fail-fast.

    The command line supplies these (manifest, console lines, progress bars); library callers may leave them out.
    """

    record: Callable[[Record], None] = _ignore
    scene_done: Callable[[WorkItem, list[Record]], None] = _ignore
    step: Callable[[int, int], None] | None = None  # (step index, step count) of the image being denoised
    notice: Callable[[str], None] = _ignore  # one-line messages: "stopping at the first failure", ...
    stop: Callable[[], bool] = lambda: False  # True once the run should end early (--fail-fast after a failure)
