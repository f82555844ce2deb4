"""The scene document's pydantic models and the wording of their errors (R1, R8). Torch-free.

pydantic is imported inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Literal

from ctxgen.scene.marks import Report, record_validation, show_value, validation_message

Fit = Literal["instance", "distort", "image", "contain"]  # contain: a ctxgen addition (docs/fits.md)
IcaMode = Literal["official", "paper"]
FIT_HELP = ("how each reference is placed in its box (docs/fits.md): `instance` (default, the published behaviour "
            "the adapter was trained on) keeps the aspect and the box's area, so the subject may overflow the box on "
            "one axis; `distort` stretches it to exactly the box; `image` fits the whole reference frame in the box; "
            "`contain` (a ctxgen addition the adapter was not trained on) keeps the aspect and stays inside the box")
DEFAULT_SIZE = (768, 768)
MAX_INSTANCES = 16

_SHAPES = {"size": "[width, height]", "canvas": "[width, height]", "point": "[x, y]", "box": "[x1, y1, x2, y2]",
           "box_norm": "[x1, y1, x2, y2]", "prompt_box": "[x1, y1, x2, y2]",
           "instances": f"1 to {MAX_INSTANCES} instances", "seed": "at least one seed"}


def num(v: float) -> str:
    """A number as written in a message: integers without a decimal point."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def nums(values) -> str:
    return "[" + ", ".join(num(v) for v in values) + "]"


def validate_document(report: Report, data: dict):
    """The validated SceneDoc, or None; every pydantic error becomes an issue in `report` (R1)."""
    from pydantic import ValidationError

    doc = None
    try:
        doc = models().scene.model_validate(data)
    except ValidationError as exc:
        _record(report, exc)
    items = data.get("instances")
    for i, item in enumerate(items if isinstance(items, list) else ()):  # pydantic skips them past the maximum
        try:
            models().instance.model_validate(item)
        except ValidationError as exc:
            _record(report, exc, ("instances", i))
    return doc


def json_schema() -> dict:
    """The JSON Schema of a scene document (for `ctxgen schema` and editor completion)."""
    schema = models().scene.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ctxgen scene"
    return schema


def _record(report: Report, exc, prefix: tuple = ()) -> None:
    record_validation(report, exc, message, prefix)


def message(err: dict, loc: tuple) -> str:
    """A pydantic error as one clear line: unknown keys list the allowed ones, bad values are shown."""
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if err["type"] in ("too_short", "too_long"):
        return f"needs {_SHAPES.get(name, 'a different number of items')}; got {len(err['input'])}"
    if err["type"] == "string_too_short":
        return "must not be empty"
    return validation_message(err, loc, _allowed, custom="scene")


def _allowed(loc: tuple) -> list[str]:
    in_instance = len(loc) == 3 and loc[0] == "instances" and isinstance(loc[1], int)
    return list((models().instance if in_instance else models().scene).model_fields)


def _fail(text: str):
    from pydantic_core import PydanticCustomError

    return PydanticCustomError("scene", text)


def _check_box(v: list[float]) -> list[float]:
    """R8: x2 > x1 and y2 > y1; zero area or an inverted box is an error."""
    problems = []
    for i, side in ((0, "width"), (1, "height")):
        lo, hi, (a, b) = f"{'xy'[i]}1", f"{'xy'[i]}2", (v[i], v[i + 2])
        if b < a:
            problems.append(f"{hi} ({num(b)}) must be greater than {lo} ({num(a)}); swap them")
        elif b == a:
            problems.append(f"{hi} equals {lo} ({num(a)}): the box has zero {side}")
    if problems:
        raise _fail("; ".join(problems))
    return v


def _check_size(v: list[int]) -> list[int]:
    """Output size: multiples of 16 (one token = 16 px, R13) within 256..2048."""
    problems = []
    for name, x in zip(("width", "height"), v):
        if not 256 <= x <= 2048:
            problems.append(f"{name} {x} is outside 256..2048")
        elif x % 16:
            problems.append(f"{name} {x} is not a multiple of 16; use {x - x % 16} or {x - x % 16 + 16}")
    if problems:
        raise _fail("; ".join(problems))
    return v


def _check_prompt(v: str) -> str:
    if not v.strip():
        raise _fail("must not be empty; describe the whole picture")
    return v


def _seed_list(v: object) -> object:
    if v is None or isinstance(v, list):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return [v]
    raise _fail(f"should be an integer >= 0 or a list of them (one image each); got {show_value(v)}")


@functools.cache
def models() -> SimpleNamespace:
    """The pydantic document models, built on first use so that importing this module stays cheap."""
    from typing import Annotated, Optional, Union

    from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

    Num = Annotated[float, Field(strict=True)]
    NonNeg = Annotated[float, Field(strict=True, ge=0)]
    Text = Annotated[str, Field(strict=True)]
    PathText = Annotated[str, Field(strict=True, min_length=1)]
    Seed = Annotated[int, Field(strict=True, ge=0, lt=2**32)]
    Box4 = Annotated[list[Num], Field(min_length=4, max_length=4), AfterValidator(_check_box)]
    RefBox = Annotated[list[NonNeg], Field(min_length=4, max_length=4), AfterValidator(_check_box)]
    Size = Annotated[list[Annotated[int, Field(strict=True)]], Field(min_length=2, max_length=2),
                     AfterValidator(_check_size)]
    Canvas = Annotated[list[Annotated[float, Field(strict=True, ge=1)]], Field(min_length=2, max_length=2)]
    Seeds = Annotated[Optional[Annotated[list[Seed], Field(min_length=1)]],
                      BeforeValidator(_seed_list, json_schema_input_type=Optional[Union[Seed, list[Seed]]])]
    strict = {"extra": "forbid", "allow_inf_nan": False}

    class InstanceDoc(BaseModel):
        """One subject: a reference cut-out and the box it goes in (exactly one of box / box_norm)."""

        model_config = ConfigDict(**strict, json_schema_extra={"oneOf": [{"required": ["box"]},
                                                                         {"required": ["box_norm"]}]})
        image: PathText = Field(description="RGBA cut-out, or an RGB image together with `mask`")
        mask: PathText = Field("alpha", description="`alpha` (default), `auto` (SAM 2) or a mask image path")
        box: Optional[Box4] = Field(None, description="x1, y1, x2, y2 in canvas pixels")
        box_norm: Optional[Box4] = Field(None, description="x1, y1, x2, y2 as fractions 0..1 of the size")
        label: Optional[Text] = None
        phrase: Optional[Text] = None
        fit: Optional[Fit] = Field(None, description="how the reference is placed in its box (docs/fits.md); "
                                   "default: the scene's `fit`")
        z: Optional[Annotated[int, Field(strict=True)]] = Field(None, description="explicit layer, higher on top")
        point: Optional[Annotated[list[NonNeg], Field(min_length=2, max_length=2)]] = None
        prompt_box: Optional[RefBox] = None

    class SceneDoc(BaseModel):
        """A ctxgen scene: a prompt, an output size and 1..16 reference instances with boxes."""

        model_config = ConfigDict(**strict)
        prompt: Annotated[Text, AfterValidator(_check_prompt)] = Field(json_schema_extra={"minLength": 1})
        size: Size = Field(list(DEFAULT_SIZE), description="output width, height: multiples of 16, 256..2048")
        canvas: Optional[Canvas] = Field(None, description="coordinate space of `box`; default: size")
        seed: Seeds = Field(None, description="an integer or a list (one image each); default: random")
        steps: Annotated[int, Field(strict=True, ge=1, le=200)] = 28
        guidance: Annotated[float, Field(strict=True, ge=0)] = 3.5
        layout: PathText = Field("auto", description="`auto`, or an RGBA layout image path")
        fit: Fit = Field("instance", description=FIT_HELP)
        ica: IcaMode = "official"
        instances: Annotated[list[InstanceDoc], Field(min_length=1, max_length=MAX_INSTANCES)]

    return SimpleNamespace(scene=SceneDoc, instance=InstanceDoc)
