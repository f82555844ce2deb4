"""Benchmark annotation files -> frozen cases (E1-E3). Torch-free.

Formats, as the published scripts read them:
- LAMICBench++ (`lamicbench_plus.json`, or the layout pack's `lamicbench_layout.json`): a list (or
  {"benchmark": [...]}) of {index, prompt?, references: [{image_path, phrase, ref_index?, bbox?}], vqa_prompts}.
- COCO-MIG (`mig_bench.json`): {key: {caption, segment: [{bbox: [x1, y1, x2, y2] in 0..1, label: "a red dog"}]}}.
- LayoutSAM-Eval: rows of the eval split (JSON list, JSONL or Parquet without images) with bbox_list,
  region_captions, detail_region_captions (lists or their Python-literal strings), width, height,
  global_caption; optionally ContextGen's sampled file [{index, global_caption, segments: [...]}] choosing rows.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxgen.core.errors import UserError
from ctxgen.eval.metrics import COLOUR_RANGES

__all__ = ["LamicCase", "LamicRef", "MigCase", "MigInstance", "Region", "SamCase", "load_cocomig", "load_lamic",
           "load_layoutsam", "read_json"]


class BenchError(UserError):
    """An annotation file that does not match its benchmark's schema: `FILE FIELD: message`."""

    def __init__(self, path: Path, where: str, message: str):
        super().__init__(f"{path} {where}: {message}")


@dataclass(frozen=True)
class LamicRef:
    ref_index: int
    image_path: str  # relative to the reference folder
    phrase: str
    bbox: tuple[float, float, float, float] | None = None  # 0..1, from the layout pack

    @property
    def is_face(self) -> bool:
        """References whose file path contains "face" are identities (IDS), the rest objects (IPS) (E3)."""
        return "face" in self.image_path

    @property
    def mask_path(self) -> str:
        return self.image_path.replace(".jpg", "_mask.png")


@dataclass(frozen=True)
class LamicCase:
    index: int
    refs: tuple[LamicRef, ...]
    questions: tuple[tuple[str, str], ...]  # (question id, question)
    prompt: str | None = None


@dataclass(frozen=True)
class MigInstance:
    label: str  # "a red dog"
    colour: str  # second word
    noun: str  # words from the third on
    bbox: tuple[float, float, float, float]  # 0..1


@dataclass(frozen=True)
class MigCase:
    key: str
    caption: str
    instances: tuple[MigInstance, ...]


@dataclass(frozen=True)
class Region:
    bbox: tuple[float, float, float, float]  # 0..1, rounded to 3 decimals as the published loader does
    caption: str
    detail: str
    ref_image: str | None = None
    ref_mask: str | None = None


@dataclass(frozen=True)
class SamCase:
    index: int
    caption: str
    regions: tuple[Region, ...]
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def read_json(path: Path) -> Any:
    """JSON (or JSONL: one object per line) with one-line errors."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the benchmark file ({exc.strerror})") from exc
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; pass the benchmark's JSON file") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1:
            try:
                return [json.loads(ln) for ln in lines]
            except ValueError:
                pass
        raise UserError(f"{path}:{exc.lineno}:{exc.colno} json: {exc.msg}") from None


def _need(obj: Any, key: str, kind: type | tuple, path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise BenchError(path, where, f"required key {key!r} is missing")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BenchError(path, f"{where}.{key}", f"should be {names}; got {type(value).__name__}")
    return value


def _box(value: Any, path: Path, where: str) -> tuple[float, float, float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or not (value[0] < value[2] and value[1] < value[3]):
        raise BenchError(path, where, f"needs [x1, y1, x2, y2] with x1 < x2 and y1 < y2; got {value!r}")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _lamic_item(item: Any, path: Path, where: str) -> LamicCase:
    index = _need(item, "index", int, path, where)
    refs = []
    for j, r in enumerate(_need(item, "references", list, path, where)):
        rw = f"{where}.references[{j}]"
        bbox = _box(r["bbox"], path, f"{rw}.bbox") if isinstance(r, dict) and "bbox" in r else None
        ref_index = r.get("ref_index", j) if isinstance(r, dict) else j
        refs.append(LamicRef(int(ref_index), _need(r, "image_path", str, path, rw), _need(r, "phrase", str, path, rw),
                             bbox))
    if not refs:
        raise BenchError(path, f"{where}.references", "needs at least one reference")
    vqa = item.get("vqa_prompts", {}) if isinstance(item, dict) else {}
    if not isinstance(vqa, dict) or not all(isinstance(q, str) for q in vqa.values()):
        raise BenchError(path, f"{where}.vqa_prompts", "should map question ids to question strings")
    prompt = item.get("prompt")
    return LamicCase(index, tuple(refs), tuple((str(k), q) for k, q in vqa.items()),
                     prompt if isinstance(prompt, str) else None)


def load_lamic(paths: list[Path]) -> list[LamicCase]:
    """One or more LAMICBench++ files merged by index (later files fill prompts, boxes and questions)."""
    merged: dict[int, LamicCase] = {}
    for path in paths:
        data = read_json(path)
        items = data.get("benchmark") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise BenchError(path, "(top level)", "expected a list of items or {\"benchmark\": [...]}")
        for i, item in enumerate(items):
            case = _lamic_item(item, path, f"[{i}]")
            merged[case.index] = _merge_lamic(merged.get(case.index), case)
    return [merged[k] for k in sorted(merged)]


def _merge_lamic(old: LamicCase | None, new: LamicCase) -> LamicCase:
    if old is None:
        return new
    refs = tuple(LamicRef(a.ref_index, a.image_path, a.phrase, a.bbox or b.bbox)
                 for a, b in zip(old.refs, new.refs)) if len(old.refs) == len(new.refs) else old.refs
    return LamicCase(old.index, refs, old.questions or new.questions, old.prompt or new.prompt)


def load_cocomig(paths: list[Path]) -> list[MigCase]:
    """mig_bench.json: every label is "a <colour> <noun words>" with a colour of the HSV table (E1)."""
    cases: list[MigCase] = []
    for path in paths:
        data = read_json(path)
        if not isinstance(data, dict):
            raise BenchError(path, "(top level)", "expected {key: {caption, segment: [...]}} (mig_bench.json)")
        for key, item in data.items():
            where = f"[{key!r}]"
            caption = _need(item, "caption", str, path, where)
            insts = []
            for j, seg in enumerate(_need(item, "segment", list, path, where)):
                sw = f"{where}.segment[{j}]"
                label = _need(seg, "label", str, path, sw)
                words = label.split(" ")
                if len(words) < 3 or words[1] not in COLOUR_RANGES:
                    raise BenchError(path, f"{sw}.label", f"expected 'a <colour> <noun>' with a colour of "
                                                          f"{', '.join(COLOUR_RANGES)}; got {label!r}")
                insts.append(MigInstance(label, words[1], " ".join(words[2:]), _box(seg.get("bbox"), path,
                                                                                     f"{sw}.bbox")))
            if not insts:
                raise BenchError(path, f"{where}.segment", "needs at least one instance")
            cases.append(MigCase(str(key), caption, tuple(insts)))
    return cases


def _literal(value: Any, path: Path, where: str) -> list:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise BenchError(path, where, "not a list literal") from None
    if not isinstance(value, list):
        raise BenchError(path, where, f"should be a list; got {type(value).__name__}")
    return value


def _sam_row(row: Any, index: int, path: Path, where: str) -> SamCase:
    w, h = _need(row, "width", int, path, where), _need(row, "height", int, path, where)
    boxes = _literal(_need(row, "bbox_list", (str, list), path, where), path, f"{where}.bbox_list")
    caps = _literal(_need(row, "region_captions", (str, list), path, where), path, f"{where}.region_captions")
    details = _literal(_need(row, "detail_region_captions", (str, list), path, where), path,
                       f"{where}.detail_region_captions")
    if not (len(boxes) == len(caps) == len(details)):
        raise BenchError(path, where, f"{len(boxes)} boxes, {len(caps)} region captions and {len(details)} detail "
                                      "captions: they must match")
    regions = []
    for j, (b, c, d) in enumerate(zip(boxes, caps, details)):
        x1, y1, x2, y2 = _box(b, path, f"{where}.bbox_list[{j}]")
        norm = (round(x1 / w, 3), round(y1 / h, 3), round(x2 / w, 3), round(y2 / h, 3))
        regions.append(Region(norm, str(c), str(d)))
    return SamCase(index, _need(row, "global_caption", str, path, where), tuple(regions))


def _parquet_rows(path: Path) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow); or export JSONL") from None
    cols = ["global_caption", "bbox_list", "region_captions", "detail_region_captions", "width", "height"]
    try:
        return pq.read_table(path, columns=cols).to_pylist()
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: not a LayoutSAM-Eval Parquet shard ({exc})") from exc


def load_layoutsam(paths: list[Path]) -> list[SamCase]:
    """Eval-split rows (index = row position over the files in order) and, optionally, the sampled subset."""
    rows: list[SamCase] = []
    sampled: list[tuple[Path, dict]] = []
    for path in paths:
        data = _parquet_rows(path) if path.suffix == ".parquet" else read_json(path)
        items = data if isinstance(data, list) else None
        if items is None:
            raise BenchError(path, "(top level)", "expected a list of LayoutSAM-Eval rows or sampled items")
        for i, item in enumerate(items):
            if isinstance(item, dict) and "segments" in item:
                sampled.append((path, item))
            else:
                rows.append(_sam_row(item, len(rows), path, f"[{i}]"))
    if not rows:
        raise UserError(f"{paths[0]}: no LayoutSAM-Eval rows (bbox_list, region_captions, detail_region_captions);"
                        " export the eval split without its images (JSONL or Parquet) and pass it too")
    if not sampled:
        return rows
    out = []
    for path, item in sampled:
        idx = _need(item, "index", int, path, "sampled item")
        if not 0 <= idx < len(rows):
            raise BenchError(path, f"index {idx}", f"outside the {len(rows)} eval rows given")
        out.append(_with_refs(rows[idx], item, path))
    return out


def _with_refs(case: SamCase, item: dict, path: Path) -> SamCase:
    """Attach ContextGen's chosen reference image/mask per segment (used by `prepare`)."""
    segs = item.get("segments", [])
    regions = list(case.regions)
    for j, seg in enumerate(segs[: len(regions)]):
        valid = (seg.get("valid_bbox") or [{}])[0] if isinstance(seg, dict) else {}
        img, mask = valid.get("image_path"), valid.get("mask_path")
        base = path.parent
        r = regions[j]
        regions[j] = Region(r.bbox, r.caption, r.detail, str(base / img) if img else None,
                            str(base / mask) if mask else None)
    boxes = [tuple(s["bbox"]) for s in segs if isinstance(s, dict) and "bbox" in s]
    return SamCase(case.index, case.caption, tuple(regions), {"boxes": boxes})
