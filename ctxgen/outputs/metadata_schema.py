"""The PNG metadata a render writes, read back as untrusted input (for `ctxgen reproduce`).

Anyone can edit a PNG's text chunks, so every field is validated (types, ranges, choices) before any of it is
used; a problem is one line naming the file and the field. Torch-free; pydantic is imported when first used.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ctxgen.core.errors import UserError
from ctxgen.core.options import ATTENTION_CHOICES, DTYPE_CHOICES, MAX_SEED, MAX_STEPS, MAX_TEXT_LEN, MEMORY_CHOICES

MAX_SCENE_TEXT = 1_000_000  # the scene file limit of `load_scene`


@functools.cache
def _models() -> Any:
    from typing import Annotated, Literal, Optional

    from pydantic import BaseModel, ConfigDict, Field

    Hex64 = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{64}$")]
    Text = Annotated[str, Field(strict=True, min_length=1, max_length=4096)]

    class SettingsDoc(BaseModel):
        model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
        steps: Annotated[int, Field(strict=True, ge=1, le=MAX_STEPS)]
        guidance: Annotated[float, Field(ge=0)]
        text_len: Annotated[int, Field(strict=True, ge=1, le=MAX_TEXT_LEN)]
        base: Text
        adapter: Optional[Text]
        adapter_sha256: Optional[Hex64]
        fused: Annotated[bool, Field(strict=True)]
        dtype: Literal[tuple(c for c in DTYPE_CHOICES if c != "auto")]  # type: ignore[valid-type]
        device: Text
        memory: Literal[MEMORY_CHOICES]  # type: ignore[valid-type]
        attention: Literal[tuple(c for c in ATTENTION_CHOICES if c != "auto")]  # type: ignore[valid-type]

    class MetadataDoc(BaseModel):
        model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
        key: Hex64
        seed: Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)]
        scene_file: Text
        scene_sha256: Hex64
        scene_yaml: Annotated[str, Field(strict=True, max_length=MAX_SCENE_TEXT)]
        files: dict[Annotated[str, Field(strict=True, min_length=1, max_length=4096)], Hex64]
        settings: SettingsDoc

    return MetadataDoc


def parse_render_metadata(meta: Any, png: Path) -> Any:
    """The validated metadata (attributes as in the PNG); a UserError naming the first bad field otherwise."""
    from pydantic import ValidationError

    if not isinstance(meta, dict):
        raise UserError(f"{png}: no ctxgen metadata in this file; pass a seed-<N>.png written by `ctxgen render`")
    try:
        return _models().model_validate(meta)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "metadata"
        message = " ".join(str(err["msg"]).split())[:200]
        raise UserError(f"{png}: metadata field {where}: {message}; the file was edited or not written by "
                        "`ctxgen render`") from None
