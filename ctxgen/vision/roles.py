"""A benchmark's set of roles: parsed from EVAL.yaml and options, each model loaded once, on first use."""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctxgen.core.errors import UsageError
from ctxgen.core.hub import is_hub_id
from ctxgen.vision.registry import DEFAULTS, LOADERS, REFERENCE, REFERENCE_KINDS, ROLE_KINDS, TINY

log = logging.getLogger(__name__)
TINY_VARIANTS = {"embedder": "dinov2", "clip": "clip", "pick": "clip"}  # which tiny model a role gets


def check_value(role: str, value: Any, where: str) -> str | dict:
    """One role value: a string, or {model:, processor:}; `reference` only where a reference variant exists."""
    if role not in ROLE_KINDS:
        raise UsageError(f"{where} {role}: unknown role; roles are {', '.join(ROLE_KINDS)}")
    if isinstance(value, dict):
        extra = set(value) - {"model", "processor"}
        if extra or not isinstance(value.get("model"), str):
            raise UsageError(f"{where} {role}: a mapping needs model: (and optionally processor:), got {sorted(value)}")
        return {k: str(v) for k, v in value.items()}
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where} {role}: give a hub id, a folder, {TINY} or {REFERENCE}; got {value!r}")
    if value.startswith(REFERENCE) and ROLE_KINDS[role] not in REFERENCE_KINDS:
        raise UsageError(f"{where} {role}: no reference variant (only {', '.join(REFERENCE_KINDS)} have one)")
    return value.strip()


def value_ident(value: str | dict) -> str:
    """What identifies a model in cache keys: hub id, absolute folder, `tiny-random`, or the answers file's hash."""
    if isinstance(value, dict):
        return "+".join(value_ident(v) for v in value.values())
    if value.startswith(REFERENCE + ":"):
        path = Path(value.partition(":")[2]).expanduser()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"
        return f"{REFERENCE}:{digest}"
    path = Path(value).expanduser()
    if path.exists() or not is_hub_id(value):
        return str(path.resolve())
    return value


class RoleSet:
    """The roles one run uses; `get(role)` loads a model the first time and keeps it."""

    def __init__(self, specs: Mapping[str, str | dict], device: str = "cpu", hub: bool = False,
                 tiny: Mapping[str, str] | None = None):
        self.specs = dict(specs)
        self.device, self.hub = device, hub
        self.tiny = {**TINY_VARIANTS, **(tiny or {})}
        self._loaded: dict[str, Any] = {}

    def ident(self, role: str) -> str:
        return value_ident(self.specs[role])

    def idents(self) -> dict[str, str]:
        return {role: self.ident(role) for role in sorted(self.specs)}

    def get(self, role: str) -> Any:
        if role not in self._loaded:
            kind = ROLE_KINDS[role]
            module, _, func = LOADERS[kind].partition(":")
            loader = getattr(importlib.import_module(module), func)
            extra = {"role": role, "tiny": self.tiny.get(role, "dinov2")} if kind == "embedder" else {}
            log.info("loading %s: %s", role, self.specs[role])
            self._loaded[role] = loader(self.specs[role], self.device, self.hub, **extra)
        return self._loaded[role]


def resolve_specs(bench: str, models: Mapping[str, Any] | None, overrides: Mapping[str, str], where: str,
                  everything: str | None = None) -> dict[str, str | dict]:
    """Defaults of `bench`, then EVAL.yaml's roles, then `--role ROLE=VALUE`; `everything` sets all at once."""
    specs: dict[str, str | dict] = dict(DEFAULTS[bench])
    if everything is not None:
        specs = {role: everything for role in specs}
    for role, value in (models or {}).items():
        specs[role] = check_value(str(role), value, where)
    for role, value in overrides.items():
        specs[role] = check_value(role, value, "--role")
    return specs


def read_models_file(path: Path) -> dict[str, Any]:
    """EVAL.yaml: a flat mapping role -> value; one-line errors naming the file."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the models file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise UsageError(f"{path}{at} yaml: {getattr(exc, 'problem', None) or exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the models file is a mapping role: model (e.g. detector: IDEA-Research/...)")
    return {str(k): v for k, v in data.items()}
