"""Settings read from the environment, each parsed in one place with a one-line error. Torch-free."""

from __future__ import annotations

import os

from ctxgen.core.errors import UserError

DEFAULT_MAX_PIXELS = 64_000_000  # decoded pixels per image; CTXGEN_MAX_PIXELS overrides
_MAX_DIGITS = 15  # a pixel cap longer than this is not a number of pixels (and int() caps at 4,300 digits)


def max_pixels() -> int:
    """The decoded-pixel cap: CTXGEN_MAX_PIXELS if set, else 64 megapixels."""
    text = os.environ.get("CTXGEN_MAX_PIXELS", "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS or int(text) <= 0:
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise UserError(f"CTXGEN_MAX_PIXELS must be a positive integer number of pixels, got {shown!r}")
    return int(text)


def debug_enabled() -> bool:
    """CTXGEN_DEBUG set to anything but empty or 0: internal errors show their traceback."""
    return os.environ.get("CTXGEN_DEBUG", "") not in ("", "0")
