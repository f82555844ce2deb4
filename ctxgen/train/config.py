"""Training config YAML -> a validated, resolved `TrainConfig`; every problem at once, `file:line:col field: msg`.

Read like a scene (R1): the YAML keeps its marks (`ctxgen.scene.marks`), pydantic checks the shape
(`config_schema`), then the paths are checked against the disk: the dataset folder, the base (a preset, a hub id
or a FLUX.1-Kontext-shaped diffusers folder), the initial adapter (required for DPO) and the preview scenes.
Nothing is written while reading a config. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxgen.core.errors import SceneError
from ctxgen.core.hub import is_hub_id
from ctxgen.scene.marks import (Report, compose, decode_text, format_issue, nested_keys, record_validation, show_value,
                                validation_message)
from ctxgen.train.config_schema import METHODS, models

MAX_CONFIG_BYTES = 1_000_000
# Sections whose values do not change what is trained: a resumed run may change them.
FREE_SECTIONS = ("output", "checkpoint", "preview", "logging")
FREE_TRAIN_KEYS = ("max_steps", "device", "prefetch", "latent_cache_mb")


class ConfigError(SceneError):
    """A training config has problems; each is one `file:LINE:COL field: message` line (exit 1)."""


@dataclass(frozen=True)
class TrainConfig:
    """A validated config with its paths resolved (absolute) and the method it runs for."""

    doc: Any  # config_schema ConfigDoc (frozen pydantic model)
    method: str  # "sft" | "dpo"
    source: Path
    digest: str  # sha256 of the config file
    base: str  # "tiny", a hub id, or an absolute diffusers folder
    shards: Path
    init_adapter: str | None  # absolute path or hub id
    text_cache: Path | None
    output: Path | None
    preview_scenes: tuple[Path, ...] = field(default=())

    @property
    def rank(self) -> int:
        """The trained LoRA's rank: lora.rank for SFT, dpo.rank for DPO (T4)."""
        return self.doc.dpo.rank if self.method == "dpo" else self.doc.lora.rank

    @property
    def alpha(self) -> float:
        alpha = self.doc.dpo.alpha if self.method == "dpo" else self.doc.lora.alpha
        return float(self.rank if alpha is None else alpha)

    def trajectory(self) -> dict:
        """The settings that decide the trained weights (a resume must keep them), as plain data."""
        doc = self.doc.model_dump(mode="json")
        for key in FREE_SECTIONS:
            doc.pop(key, None)
        for key in FREE_TRAIN_KEYS:
            doc["train"].pop(key, None)
        if self.method == "sft":
            doc.pop("dpo")
        doc["model"]["base"], doc["data"]["shards"] = self.base, str(self.shards)
        doc["model"]["init_adapter"] = self.init_adapter
        doc["data"].pop("text_cache")
        return {"method": self.method, **doc}


def validate_config(report: Report, data: dict):
    """The validated ConfigDoc, or None; every pydantic error becomes an issue in `report`."""
    from pydantic import ValidationError

    try:
        return models().config.model_validate(data)
    except ValidationError as exc:
        record_validation(report, exc, _message)
    return None


def _message(err: dict, loc: tuple) -> str:
    """A pydantic error as one line; an unknown key lists the keys of its section."""
    return validation_message(err, loc, lambda at: nested_keys(models().config, at), custom="train")


def load_config(path: str | os.PathLike[str], method: str) -> TrainConfig:
    """Read, validate and resolve a training config for `method` (sft or dpo); a ConfigError lists every problem."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    shown = os.fspath(path)
    raw = _read(Path(shown), shown)
    report = Report(shown)
    root = compose(decode_text(raw, shown), shown)
    data = report.walk(root) if root is not None else None
    if not isinstance(data, dict):
        got = "the file is empty" if root is None else f"got {show_value(data)}"
        raise ConfigError([format_issue(shown, 1, 1, "config", f"a training config is a mapping with `data:` "
                                        f"and optional sections (see `ctxgen train schema`); {got}")])
    doc = validate_config(report, data)
    folder = Path(shown).resolve().parent
    resolved = _semantics(report, data, doc, folder, method)
    extra = resolved.pop("scene_issues")
    if report.issues or doc is None:
        raise ConfigError(report.lines() + extra)
    if extra:
        raise ConfigError(extra)
    return TrainConfig(doc=doc, method=method, source=Path(shown).resolve(), digest=hashlib.sha256(raw).hexdigest(),
                       **resolved)


def _read(path: Path, shown: str) -> bytes:
    from ctxgen.scene.model import file_problem

    problem = file_problem(path, "config file", hint="")
    if problem is None and path.stat().st_size > MAX_CONFIG_BYTES:
        problem = f"larger than {MAX_CONFIG_BYTES:,} bytes; this is not a training config"
    if problem is None:
        return path.read_bytes()
    raise ConfigError([format_issue(shown, 1, 1, "file", problem)])


def _get(data: dict, report: Report, *loc: str) -> Any:
    """The raw value at loc when it validated, else None."""
    value: Any = data
    for part in loc:
        value = value.get(part) if isinstance(value, dict) else None
    return value if report.ok(loc) else None


def _semantics(report: Report, data: dict, doc, folder: Path, method: str) -> dict:
    """Checks against the disk, on every raw value that validated; returns the resolved paths."""
    from ctxgen.scene.model import resolve_path

    out: dict[str, Any] = {"scene_issues": []}
    out["base"] = _check_base(report, _get(data, report, "model", "base") or "contextgen", folder)
    out["shards"] = _check_shards(report, _get(data, report, "data", "shards"), folder)
    out["init_adapter"] = _check_adapter(report, data, folder, method)
    cache = _get(data, report, "data", "text_cache")
    out["text_cache"] = resolve_path(folder, cache) if isinstance(cache, str) else None
    if out["text_cache"] is not None and out["text_cache"].exists() and not out["text_cache"].is_dir():
        report.at(("data", "text_cache"), f"{out['text_cache']} is a file; give a folder for the text cache")
    output = _get(data, report, "output")
    out["output"] = resolve_path(folder, output) if isinstance(output, str) else None
    if out["output"] is not None and out["output"].exists() and not out["output"].is_dir():
        report.at(("output",), f"{out['output']} is a file; give a folder for the run")
    out["preview_scenes"] = _check_scenes(report, data, folder, out["scene_issues"])
    if doc is not None and doc.train.device == "cpu":
        if doc.model.quantize == "nf4":
            report.at(("model", "quantize"), "nf4 needs a CUDA GPU (bitsandbytes) but train.device is cpu")
        if doc.optimizer.name == "adamw8bit":
            report.at(("optimizer", "name"), "adamw8bit needs a CUDA GPU (bitsandbytes) but train.device is cpu")
    return out


def _check_base(report: Report, base: str, folder: Path) -> str:
    """A preset name, an existing FLUX.1-Kontext-shaped folder, or a hub id."""
    from ctxgen.models.registry import PRESETS
    from ctxgen.scene.model import resolve_path

    if base in PRESETS:
        return PRESETS[base].base
    path = resolve_path(folder, base)
    if path.exists():
        problem = base_shape_problem(path)
        if problem:
            report.at(("model", "base"), problem)
        return str(path)
    if is_hub_id(base):
        return base
    report.at(("model", "base"), f"{base!r} is neither a preset ({', '.join(PRESETS)}), an existing folder "
              "(relative to this file) nor a hub id (owner/name)")
    return base


def base_shape_problem(path: Path) -> str | None:
    """Why a local base folder is not a FLUX.1-Kontext-shaped diffusers folder (from its JSON configs), or None."""
    from ctxgen.models.loading import missing_base_files

    if not path.is_dir():
        return f"{path} is a file; give a diffusers folder (model_index.json, transformer/, vae/, ...)"
    missing = missing_base_files(path)
    if missing:
        return f"base folder {path} is incomplete: missing {', '.join(missing[:3])}"
    try:
        tr = json.loads((path / "transformer" / "config.json").read_text(encoding="utf-8"))
        vae = json.loads((path / "vae" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"base folder {path}: unreadable component config ({exc})"
    wants = (("transformer class", tr.get("_class_name"), "FluxTransformer2DModel"),
             ("transformer in_channels", tr.get("in_channels"), 64),
             ("VAE latent_channels", vae.get("latent_channels"), 16))
    bad = [f"{what} is {got!r} (need {need!r})" for what, got, need in wants if got != need]
    if bad:
        return f"base folder {path} is not FLUX.1-Kontext-shaped: {'; '.join(bad)}"
    return None


def _check_shards(report: Report, shards: str | None, folder: Path) -> Path:
    from ctxgen.core.errors import UserError
    from ctxgen.dataset.shards import list_shards
    from ctxgen.scene.model import resolve_path

    path = resolve_path(folder, shards) if isinstance(shards, str) else folder
    if isinstance(shards, str):
        try:
            list_shards(path)
        except UserError as exc:
            report.at(("data", "shards"), str(exc))
    return path


def _check_adapter(report: Report, data: dict, folder: Path, method: str) -> str | None:
    from ctxgen.scene.model import resolve_path

    adapter = _get(data, report, "model", "init_adapter")
    if adapter is None:
        if method == "dpo" and report.ok(("model", "init_adapter")):
            report.at(("model", "init_adapter"), "required for `ctxgen train dpo`: the SFT adapter the policy starts "
                      "from (T4); give its .safetensors file or folder")
        return None
    path = resolve_path(folder, adapter)
    if path.exists():
        if path.is_file() and path.suffix.lower() != ".safetensors":
            report.at(("model", "init_adapter"), f"{path} is not a .safetensors file; ctxgen loads no pickles")
        return str(path)
    if is_hub_id(adapter):
        return adapter
    report.at(("model", "init_adapter"), f"not found: {path} (paths are relative to this file)")
    return None


def _check_scenes(report: Report, data: dict, folder: Path, scene_issues: list[str]) -> tuple[Path, ...]:
    """Preview scenes load as `ctxgen validate` loads them; their own problems are passed on as they are."""
    from ctxgen.scene.model import file_problem, load_scene, resolve_path

    scenes = _get(data, report, "preview", "scenes") or []
    paths = []
    for i, text in enumerate(scenes):
        path = resolve_path(folder, text)
        problem = file_problem(path, "scene file", hint="; paths are relative to the config file")
        if problem:
            report.at(("preview", "scenes", i), problem)
            continue
        try:
            load_scene(path)
        except SceneError as exc:
            scene_issues.extend(exc.issues)
            continue
        paths.append(path)
    return tuple(paths)
