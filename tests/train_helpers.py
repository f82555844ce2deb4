"""Builders shared by the training tests: a small synthetic dataset and tiny-model training configs (CPU, float32)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {  # 128x128 canvas, references of area 64^2, T = 16, rank 4: steps of a few tens of ms on one CPU
    "seed": 0,
    "model": {"base": "tiny"},
    "data": {"shards": "data", "canvas": [128, 128], "reference_area": 64, "text_len": 16},
    "lora": {"rank": 4},
    "optimizer": {"lr": 1.0e-3},
    "train": {"max_steps": 4, "batch": 2, "precision": "fp32", "device": "cpu", "gradient_checkpointing": False},
    "checkpoint": {"every": 2, "keep": 2},
    "preview": {"every": 0, "at_start": False},
    "logging": {"tensorboard": "off"},
}


def merged(base: dict, extra: dict) -> dict:
    """base updated by extra, section by section (a value None removes the key)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def write_config(folder: Path, name: str = "train.yaml", **sections) -> Path:
    """A tiny training config in `folder` (its `data` folder is relative to it), with sections overridden."""
    path = folder / name
    path.write_text(yaml.safe_dump(merged(TINY, sections), sort_keys=False), encoding="utf-8")
    return path


def make_data(folder: Path, n: int = 6) -> Path:
    """`folder/data`: n synthetic records (256 px, basic and composite subsets)."""
    from ctxgen.dataset.synthetic import make_synthetic

    make_synthetic(folder / "data", n, seed=0, size=256)
    return folder / "data"


@pytest.fixture(scope="session")
def train_root(tmp_path_factory) -> Path:
    """A folder holding `data/` (6 synthetic records); write configs beside it (or copy it)."""
    root = tmp_path_factory.mktemp("train")
    make_data(root)
    return root


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    """`python -m ctxgen ARGS` in a subprocess (its own signal handling, exit codes)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "ctxgen", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny-model training on one torch thread (on a busy 2-core machine two threads spin against each other)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def open_tiny(root: Path, name: str, method: str = "sft", resume: str | None = None, max_steps: int | None = None,
              **sections):
    """A training session on the tiny model: config `root/<name>.yaml`, run folder `root/<name>`."""
    from ctxgen.train.config import load_config
    from ctxgen.train.loop import open_session

    cfg = load_config(write_config(root, f"{name}.yaml", **sections), method)
    return open_session(cfg, root / name, resume, max_steps)


def adapter_tensors(path: Path) -> dict:
    import safetensors.torch

    return safetensors.torch.load_file(str(path))
