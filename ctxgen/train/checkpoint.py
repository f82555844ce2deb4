"""Training checkpoints (T3): safetensors for tensors, JSON for the rest, written atomically, the last K kept.

    RUN/checkpoints/step-00000200/adapter.safetensors     the trained LoRA parameters (float32, peft names)
                                  optimizer.safetensors   the optimizer's tensors
                                  state.json              step, data cursor, optimizer scalars, config, file hashes
    RUN/adapter/contextgen_<method>_<step>.safetensors    the diffusers LoRA that `render --adapter RUN/adapter/` loads

`state.json` is written last: a folder without it (a run killed while saving) is not a checkpoint, and is
removed by the next save. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ctxgen.core.errors import UserError
from ctxgen.core.fsio import sha256_file, write_bytes, write_json

FORMAT = "ctxgen-train-checkpoint"
VERSION = 1
CHECKPOINTS = "checkpoints"
ADAPTERS = "adapter"
_STEP_DIR = re.compile(r"^step-(\d{8})$")
_ADAPTER = re.compile(r"^contextgen_(sft|dpo)_(\d+)\.safetensors$")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    folder: Path
    step: int
    params: dict[str, torch.Tensor]
    optimizer_tensors: dict[str, torch.Tensor]
    state: dict[str, Any]


def step_dir(run: Path, step: int) -> Path:
    return run / CHECKPOINTS / f"step-{step:08d}"


def adapter_path(run: Path, method: str, step: int) -> Path:
    return run / ADAPTERS / f"contextgen_{method}_{step}.safetensors"


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    import safetensors.torch

    write_bytes(path, safetensors.torch.save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}))
    return sha256_file(path)


def save(run: Path, step: int, params: dict[str, torch.Tensor], optimizer_tensors: dict[str, torch.Tensor],
         state: dict[str, Any], keep: int) -> Path:
    """Write one checkpoint (state.json last), then keep only the newest `keep` (and their adapter files)."""
    folder = step_dir(run, step)
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished save of this step, or one being replaced
    files = {"adapter.safetensors": _save_tensors(folder / "adapter.safetensors", params),
             "optimizer.safetensors": _save_tensors(folder / "optimizer.safetensors", optimizer_tensors)}
    write_json(folder / "state.json", {"format": FORMAT, "version": VERSION, "step": step, "files": files, **state})
    prune(run, keep)
    return folder


def complete_steps(run: Path) -> list[int]:
    """Steps with a finished checkpoint (state.json present), ascending."""
    root = run / CHECKPOINTS
    if not root.is_dir():
        return []
    steps = [int(m.group(1)) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and (p / "state.json").is_file()]
    return sorted(steps)


def prune(run: Path, keep: int) -> None:
    """Remove all but the newest `keep` checkpoints, unfinished folders, and adapter files of removed steps."""
    steps = complete_steps(run)
    kept = set(steps[-keep:])
    root = run / CHECKPOINTS
    for p in root.iterdir() if root.is_dir() else ():
        m = _STEP_DIR.match(p.name)
        if m and int(m.group(1)) not in kept:
            shutil.rmtree(p, ignore_errors=True)
    for p in (run / ADAPTERS).glob("contextgen_*.safetensors") if (run / ADAPTERS).is_dir() else ():
        m = _ADAPTER.match(p.name)
        if m and int(m.group(2)) not in kept and int(m.group(2)) < max(kept, default=0):
            p.unlink(missing_ok=True)


def find(run: Path, resume: str) -> Path | None:
    """`auto`: the newest finished checkpoint of the run (None when it has none); else that checkpoint folder."""
    if resume == "auto":
        steps = complete_steps(run)
        return step_dir(run, steps[-1]) if steps else None
    folder = Path(resume).expanduser()
    if not (folder / "state.json").is_file():
        raise UserError(f"--resume {resume}: not a finished checkpoint folder (no state.json); give "
                        f"RUN/{CHECKPOINTS}/step-NNNNNNNN or auto")
    return folder


def load(folder: Path) -> Checkpoint:
    """Read a checkpoint back, checking every file against the hashes in its state.json."""
    import safetensors.torch

    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"checkpoint {folder}: state.json is unreadable ({exc}); resume from another one") from None
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise UserError(f"checkpoint {folder}: not a ctxgen training checkpoint of version {VERSION}")
    tensors = {}
    for name, digest in state["files"].items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            raise UserError(f"checkpoint {folder}: {name} is missing or damaged (hash differs); resume from another "
                            "one")
        tensors[name] = safetensors.torch.load_file(str(path))
    return Checkpoint(folder, int(state["step"]), tensors["adapter.safetensors"], tensors["optimizer.safetensors"],
                      state)
