"""The dataset keys of a pack scene file, read from the plain document with their YAML line:col (R1). Torch-free.

Issues are recorded in the scene reader's `Report`, so they print exactly like the scene's own issues.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ctxgen.dataset.record import ImageData, read_image_data
from ctxgen.scene.marks import Report
from ctxgen.scene.model import resolve_path

SUBSET_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
HINT = "; paths are relative to the scene file"
_JSON_TYPES = (str, int, float, bool, type(None))


class DatasetKeys:
    """Reads and checks the dataset keys of one document, recording located issues in the scene's Report."""

    def __init__(self, report: Report, base: Path):
        self.report, self.base = report, base

    def at(self, loc: tuple, message: str) -> None:
        self.report.at(loc, message)

    def image(self, data: dict, loc: tuple, required: bool = False) -> ImageData | None:
        """The image a path key names (bytes read, header checked), relative to the scene's folder."""
        value = data.get(loc[-1])
        if value is None:
            if required:
                self.at(loc, "required key is missing: the target image of this scene")
            return None
        if not isinstance(value, str) or not value:
            self.at(loc, "needs an image path")
            return None
        from ctxgen.scene.images import ImageError

        try:
            img = read_image_data(resolve_path(self.base, value), hint=HINT)
            img.size()  # the header must be readable
            return img
        except ImageError as exc:
            self.at(loc, exc.reason if "not found" in exc.reason else f"{exc.path.name}: {exc.reason}")
        except (OSError, ValueError, RuntimeError) as exc:
            self.at(loc, f"not a usable path ({exc})")
        return None

    def numbers(self, data: dict, loc: tuple, n: int) -> tuple[float, ...] | None:
        """n finite numbers (bools are not numbers), or None when the key is absent."""
        value = data.get(loc[-1])
        if value is None:
            return None
        ok = isinstance(value, list) and len(value) == n and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        if not ok:
            self.at(loc, f"needs {n} finite numbers")
            return None
        return tuple(float(v) for v in value)

    def text(self, data: dict, key: str, pattern: re.Pattern | None = None) -> str | None:
        """A one-line text (optionally matching `pattern`), or None when the key is absent."""
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or not value.isprintable() or len(value) > 200:
            self.at((key,), "needs a one-line text of 1 to 200 characters")
        elif pattern is not None and not pattern.fullmatch(value):
            self.at((key,), "use letters, digits, '_', '.' and '-' only")
        else:
            return value
        return None

    def metadata(self, data: dict) -> dict:
        """The free metadata mapping; it must be plain JSON to survive the Parquet `metadata` column exactly."""
        value = data.get("metadata")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.at(("metadata",), "needs a mapping of free JSON values")
            return {}
        bad = non_json(value)
        if bad:
            self.at(("metadata",) + bad[0], f"not a JSON value ({bad[1]}); use text, numbers, true/false, null, "
                    "lists and mappings with text keys")
            return {}
        return value


def non_json(value: Any, loc: tuple = ()) -> tuple[tuple, str] | None:
    """The location and type name of the first value that is not plain JSON (dates, non-text keys, NaN)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return loc, f"key {k!r}"
            found = non_json(v, loc + (k,))
            if found:
                return found
        return None
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = non_json(v, loc + (i,))
            if found:
                return found
        return None
    if not isinstance(value, _JSON_TYPES) or (isinstance(value, float) and not math.isfinite(value)):
        return loc, type(value).__name__ if not isinstance(value, float) else "not finite"
    return None
