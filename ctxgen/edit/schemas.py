"""The editor's JSON API: one pydantic model per request and response body."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from ctxgen.edit.session import Check, Issue


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpIn(Strict):
    """One field edit: `set` a value (adding the key if needed), `delete` a key, `append` or `remove` an item."""

    op: Literal["set", "delete", "append", "remove"]
    path: list[Union[str, int]] = Field(max_length=8)
    value: Any = None


class EditIn(Strict):
    version: int
    ops: list[OpIn] = Field(min_length=1, max_length=64)


class TextIn(Strict):
    version: int
    text: str


class VersionIn(Strict):
    version: int


class SaveIn(Strict):
    version: int
    overwrite: bool = False


class LayerIn(Strict):
    version: int
    instance: int = Field(ge=0)
    action: Literal["up", "down", "front", "back"]


class IssueOut(Strict):
    text: str
    line: int
    col: int
    path: str
    message: str

    @classmethod
    def of(cls, issue: Issue) -> IssueOut:
        return cls(**issue.__dict__)


class SceneOut(Strict):
    """The scene as the page shows it: text, data, and `ctxgen validate`'s lines split per field."""

    version: int
    text: str
    data: Any
    valid: bool
    dirty: bool
    exists: bool
    issues: list[IssueOut]
    warnings: list[IssueOut]
    file: str
    folder: str

    @classmethod
    def of(cls, check: Check, dirty: bool, exists: bool, file: str, folder: str) -> SceneOut:
        return cls(version=check.version, text=check.text, data=jsonable(check.data), valid=check.scene is not None,
                   dirty=dirty, exists=exists, issues=[IssueOut.of(i) for i in check.issues],
                   warnings=[IssueOut.of(w) for w in check.warnings], file=file, folder=folder)


class SavedOut(Strict):
    saved: str
    backup: Optional[str]
    scene: SceneOut


class PreviewOut(Strict):
    """A layout preview, or why there is none (problems, or SAM masks to compute first)."""

    version: int
    ok: bool
    needs_masks: list[int] = []
    problems: list[str] = []
    key: Optional[str] = None
    layout_url: Optional[str] = None
    size: Optional[list[int]] = None
    base: Optional[int] = None
    order: list[int] = []
    boxes: list[list[int]] = []
    token_boxes: list[list[int]] = []
    refs: list[dict[str, Any]] = []
    ms: Optional[float] = None


class JobOut(Strict):
    id: str
    kind: str
    state: str
    progress: dict[str, Any]
    result: Optional[dict[str, Any]]
    error: Optional[str]
    created: float
    events: int


class UploadOut(Strict):
    path: str
    size: list[int]
    alpha: bool
    format: str


class InfoOut(Strict):
    """What the page needs once: the file, the model, the limits."""

    file: str
    folder: str
    model: str
    sam_model: str
    out_dir: str
    max_upload: int
    palette: list[str]  # the instance colours of every ctxgen picture, as #rrggbb


def jsonable(value: Any) -> Any:
    """Plain YAML data as JSON: odd scalars (dates, NaN, bytes) become their text so the page can show them."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return str(value)
