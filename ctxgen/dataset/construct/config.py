"""CONSTRUCT.yaml: every stage's settings with the D3/D4 thresholds as defaults; every problem at once, `file:line:col`.

The document is read with the scene reader's YAML marks (`ctxgen.scene.marks`), validated with strict pydantic
models (unknown keys refused, no type coercion), and each error becomes one located line. Torch-free.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ctxgen.core.errors import SceneError
from ctxgen.scene.marks import Report, compose, decode_text, format_issue, nested_keys, record_validation, validation_message

PATHS = ("basic", "complex", "flexible")
STAGES = {"basic": ("prompts", "t2i", "detect", "crop", "repaint", "segment", "filter"),
          "flexible": ("prompts", "references", "compose", "match")}
STAGES["complex"] = STAGES["basic"]
ALL_STAGES = tuple(dict.fromkeys(STAGES["basic"] + STAGES["flexible"]))
TINY = "tiny"
# D3 step 5: the repaint edits and their weights (IMIG-Source's template table, as data).
EDITS = (
    {"prefix": "Place", "weight": 0.4, "suffixes": [
        "under the morning sun, casting long shadows", "under the scorching midday sun.", "in the glow of the sunset.",
        "in rainy day light.", "on a sandy beach.", "in the warm, golden light of dawn.",
        "under the harsh, direct light of midday.", "look like it's captured during a fast movement."]},
    {"prefix": "Make", "weight": 0.1, "suffixes": ["look like it's in motion."]},
    {"prefix": "Rotate the camera 30 degrees to view slightly from the side of", "weight": 0.15, "suffixes": []},
    {"prefix": "Rotate the camera 45 degrees to view from the side of", "weight": 0.15, "suffixes": []},
    {"prefix": "Rotate the camera 60 degrees to view from the side of", "weight": 0.1, "suffixes": []},
    {"prefix": "Rotate the camera 90 degrees to view directly from the side of", "weight": 0.1, "suffixes": []},
)
HUMAN_WORDS = tuple(
    "person people man men woman women boy girl child children kid baby toddler teen teenager adult lady gentleman "
    "guy human mother father mom dad parent grandmother grandfather grandma grandpa son daughter brother sister "
    "friend couple family worker student teacher doctor nurse chef cook waiter waitress barista vendor customer "
    "shopper tourist traveler traveller hiker jogger runner cyclist rider skier surfer swimmer dancer singer musician "
    "guitarist drummer pianist violinist artist painter photographer player athlete officer policeman policewoman "
    "firefighter soldier guard pilot driver farmer fisherman gardener mechanic engineer scientist researcher "
    "colleague judge lawyer juror bailiff foreman builder carpenter clerk cashier librarian priest monk nun king "
    "queen prince princess knight warrior swordsman mage wizard witch hacker detective agent salaryman businessman "
    "businesswoman professor coach referee spectator audience passenger patient pedestrian villager shepherd sailor "
    "captain maiden bride groom elder".split())


def _models():
    """The pydantic models of the document (built once, on first use, so importing stays cheap)."""
    return _build_models()


def _generation_sections(strict):
    """The config sections of the generating stages (prompts, models, t2i, detect, repaint)."""
    from pydantic import BaseModel, Field

    class Endpoint(BaseModel):
        model_config = strict
        base_url: str = "https://api.deepseek.com"
        model: str = "deepseek-chat"
        api_key_env: str = "DEEPSEEK_API_KEY"
        temperature: float = Field(1.0, ge=0.0, le=2.0)
        timeout_s: float = Field(120.0, gt=0)

    class Prompts(BaseModel):
        model_config = strict
        source: str = Field("file", pattern="^(file|llm)$")
        file: str | None = None
        count: int = Field(100, ge=1, le=10_000_000)
        per_call: int = Field(30, ge=1, le=200)
        endpoint: Endpoint = Endpoint()
        check: bool = True
        min_instances: int | None = Field(None, ge=1, le=16)  # None: the path's D3 rule (>3 basic, >5 complex)
        min_humans: int | None = Field(None, ge=0, le=16)  # None: the path's D3 rule (1 basic, 2 complex)
        human_words: list[str] = list(HUMAN_WORDS)

    class ModelSet(BaseModel):
        model_config = strict
        t2i: str = "FLUX.1-dev"
        t2i_lora: str | None = "alimama-creative/FLUX.1-Turbo-Alpha"
        editor: str = "FLUX.1-Kontext-dev"
        detector: str = "IDEA-Research/grounding-dino-tiny"
        segmenter: str = "facebook/sam2.1-hiera-large"
        embedder: str = "facebook/dinov2-giant"
        face: str | None = None  # insightface pack (buffalo_l) with the optional extra; None: objects only

    class Generate(BaseModel):
        model_config = strict
        size: list[int] = Field([1024, 1024], min_length=2, max_length=2)
        steps: int = Field(8, ge=1, le=200)
        guidance: float = Field(3.5, ge=0.0)
        text_len: int = Field(512, ge=8, le=512)

    class Detect(BaseModel):
        model_config = strict
        box_threshold: float = Field(0.35, ge=0.0, le=1.0)
        text_threshold: float = Field(0.25, ge=0.0, le=1.0)
        min_side: float = Field(1 / 16, ge=0.0, le=1.0)
        min_area: float = Field(1 / 200, ge=0.0, le=1.0)
        nms_iou: float = Field(0.625, ge=0.0, le=1.0)
        max_boxes: int = Field(8, ge=1, le=16)

    class Repaint(BaseModel):
        model_config = strict
        area: int = Field(1024 * 1024, ge=256, le=4096 * 4096)
        steps: int = Field(15, ge=1, le=200)
        guidance: float = Field(2.5, ge=0.0)
        text_len: int = Field(512, ge=8, le=512)
        edits: list[dict[str, Any]] = [dict(e) for e in EDITS]
        box_threshold: float = Field(0.35, ge=0.0, le=1.0)
        text_threshold: float = Field(0.25, ge=0.0, le=1.0)

    return SimpleNamespace(Endpoint=Endpoint, Prompts=Prompts, ModelSet=ModelSet, Generate=Generate, Detect=Detect,
                           Repaint=Repaint)


@functools.cache
def _build_models():
    from pydantic import BaseModel, ConfigDict, Field

    strict = ConfigDict(extra="forbid", strict=True, frozen=True)
    g = _generation_sections(strict)
    Prompts, ModelSet, Generate, Detect, Repaint = g.Prompts, g.ModelSet, g.Generate, g.Detect, g.Repaint

    class Filter(BaseModel):
        model_config = strict
        min_instances: int = Field(2, ge=1, le=16)
        max_instances: int | None = Field(None, ge=1, le=16)  # None: 5 (basic) or 8 (complex)
        min_area: float = Field(0.01, ge=0.0, le=1.0)
        min_fit: float = Field(0.6, ge=0.0, le=1.0)

    class References(Generate):
        size: list[int] = Field([768, 768], min_length=2, max_length=2)
        steps: int = Field(12, ge=1, le=200)
        box_threshold: float = Field(0.3, ge=0.0, le=1.0)
        text_threshold: float = Field(0.25, ge=0.0, le=1.0)

    class Compose(Generate):
        size: list[int] = Field([512, 512], min_length=2, max_length=2)
        steps: int = Field(28, ge=1, le=200)
        ref_size: int = Field(512, ge=16, le=2048)
        ref_scale: float = Field(0.9, gt=0.0, le=1.0)

    class Match(BaseModel):
        model_config = strict
        box_threshold: float = Field(0.3, ge=0.0, le=1.0)
        text_threshold: float = Field(0.25, ge=0.0, le=1.0)
        candidate_similarity: float = Field(0.5, ge=-1.0, le=1.0)
        dino: float = Field(0.82, ge=-1.0, le=1.0)
        face: float = Field(0.65, ge=-1.0, le=1.0)
        face_found: float = Field(0.4, ge=-1.0, le=1.0)
        box_overlap: float = Field(0.75, ge=0.0, le=1.0)
        face_overlap: float = Field(0.5, ge=0.0, le=1.0)
        min_instances: int = Field(2, ge=1, le=16)

    class Output(BaseModel):
        model_config = strict
        folder: str = "dataset"
        subset: str | None = None  # None: basic / complex / composite
        split: str = Field("train", pattern=r"^[A-Za-z0-9_.]+$")
        per_shard: int = Field(500, ge=1)
        image_format: str = Field("jpeg", pattern="^(jpeg|png)$")

    class Construct(BaseModel):
        model_config = strict
        path: str = Field("basic", pattern="^(basic|complex|flexible)$")
        seed: int = Field(0, ge=0, le=2**32 - 1)
        dtype: str = Field("auto", pattern="^(auto|float32|bfloat16|float16)$")
        models: ModelSet = ModelSet()
        prompts: Prompts = Prompts()
        t2i: Generate = Generate()
        detect: Detect = Detect()
        repaint: Repaint = Repaint()
        filter: Filter = Filter()
        references: References = References()
        compose: Compose = Compose()
        match: Match = Match()
        output: Output = Output()

    return Construct


class ConstructConfig:
    """The validated document plus where it came from (relative paths resolve against its folder)."""

    def __init__(self, doc: Any, source: Path | None):
        self.doc, self.source = doc, source
        self.base = source.parent if source is not None else Path.cwd()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["doc"], name)

    def section(self, name: str) -> dict:
        """A stage's settings as plain JSON (part of every item key of that stage)."""
        value = getattr(self.doc, name, None)
        return value.model_dump(mode="json") if value is not None else {}

    def resolve(self, text: str) -> Path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.base / path

    @property
    def stages(self) -> tuple[str, ...]:
        return STAGES[self.doc.path]

    @property
    def subset(self) -> str:
        return self.doc.output.subset or {"flexible": "composite"}.get(self.doc.path, self.doc.path)

    def rule(self) -> tuple[int, int]:
        """(min nouns, min humans) of the D3 prompt rule for this path (>3 with 1 human; >5 with 2), or the config's."""
        n, h = {"complex": (6, 2), "flexible": (2, 0)}.get(self.doc.path, (4, 1))
        p = self.doc.prompts
        return (p.min_instances if p.min_instances is not None else n, p.min_humans if p.min_humans is not None else h)

    def max_instances(self) -> int:
        return self.doc.filter.max_instances or (8 if self.doc.path == "complex" else 5)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.doc.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def default_config() -> ConstructConfig:
    return ConstructConfig(_models()(), None)


def load_config(path: str | Path) -> ConstructConfig:
    """Read and check CONSTRUCT.yaml; every problem in one SceneError of `file:line:col field: message` lines."""
    from pydantic import ValidationError

    path = Path(path)
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SceneError([format_issue(shown, 1, 1, "file", f"cannot read the config ({exc.strerror or exc})")]) \
            from None
    text = decode_text(raw, shown)
    node = compose(text, shown)
    report = Report(shown)
    data = report.walk(node) if node is not None else {}
    if not isinstance(data, dict):
        raise SceneError([format_issue(shown, 1, 1, "config", "the config is a mapping of sections (path:, models:, "
                                       "prompts:, ...); see docs/construct.md")])
    doc = None
    try:
        doc = _models().model_validate(data)
    except ValidationError as exc:
        record_validation(report, exc, _message)
    if doc is not None:
        _semantics(report, doc)
    if report.issues or doc is None:
        raise SceneError(report.lines())
    return ConstructConfig(doc, path.resolve())


def _message(err: dict, loc: tuple) -> str:
    """A pydantic error as one line; an unknown key lists the keys of its section."""
    return validation_message(err, loc, lambda at: nested_keys(_models(), at))


def _semantics(report: Report, doc: Any) -> None:
    """What the schema cannot say: sizes in 16-px steps, the edit table's shape, a prompt file for `source: file`."""
    for section in ("t2i", "references", "compose"):
        for i, v in enumerate(getattr(doc, section).size):
            if not 64 <= v <= 2048 or v % 16:
                report.at((section, "size", i), f"{v} must be a multiple of 16 within 64..2048")
    for i, edit in enumerate(doc.repaint.edits):
        ok = (isinstance(edit.get("prefix"), str) and isinstance(edit.get("weight"), (int, float))
              and edit["weight"] >= 0 and isinstance(edit.get("suffixes", []), list)
              and set(edit) <= {"prefix", "weight", "suffixes"})
        if not ok:
            report.at(("repaint", "edits", i), "an edit is {prefix: text, weight: number >= 0, suffixes: [text, ...]}")
    if doc.repaint.edits and not sum(e.get("weight", 0) or 0 for e in doc.repaint.edits if isinstance(e, dict)) > 0:
        report.at(("repaint", "edits"), "the weights must not all be 0")
    if doc.prompts.source == "file" and not doc.prompts.file:
        report.at(("prompts",), "source: file needs file: PROMPTS.json (or use source: llm)")
    if doc.filter.max_instances is not None and doc.filter.max_instances < doc.filter.min_instances:
        report.at(("filter", "max_instances"), "must be at least min_instances")


def config_from_dict(doc: dict, source: str | None) -> ConstructConfig:
    """A config rebuilt from `model_dump(mode="json")` (how worker processes receive it)."""
    return ConstructConfig(_models().model_validate(doc), Path(source) if source else None)


def config_to_dict(cfg: ConstructConfig) -> tuple[dict, str | None]:
    return cfg.doc.model_dump(mode="json"), (str(cfg.source) if cfg.source else None)
