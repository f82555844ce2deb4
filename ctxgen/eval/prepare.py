"""Benchmark -> ctxgen scene files (references, boxes, prompt, seeds, size as each benchmark samples them).

LAMICBench++: 768x768, seeds 42-45, boxes round(bbox * 768), the layout pack's image as `layout:` if given.
COCO-MIG: 512x512, seed 42, `fit: distort`, per label the reference whose aspect is closest to the box
(ContextGen's reference pack). LayoutSAM: 768x768, seed 42, the sampled file's reference per segment.
Existing identical scene files are left alone, so a re-run is cheap and resumable.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ctxgen.core.errors import UserError
from ctxgen.core.fsio import write_text
from ctxgen.eval.cases import load_cocomig, load_lamic, load_layoutsam, read_json


def _relative(path: Path, folder: Path) -> str:
    import os

    return os.path.relpath(Path(path).resolve(), Path(folder).resolve())


def _write(folder: Path, name: str, doc: dict) -> Path | None:
    path = folder / f"{name}.yaml"
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return None
    write_text(path, text)
    return path


def _lamic(files: list[Path], out: Path, refs: Path, masks: Path, layouts: Path | None) -> list[Path | None]:
    written = []
    for case in load_lamic(files):
        if case.prompt is None or any(r.bbox is None for r in case.refs):
            raise UserError(f"{files[0]} [{case.index}]: prepare needs prompt and bbox per reference; pass the "
                            "layout pack's lamicbench_layout.json as well")
        instances = []
        for r in case.refs:
            for p in (refs / r.image_path, masks / r.mask_path):
                if not p.is_file():
                    raise UserError(f"{p}: not found; pass --refs reference_images/ and --masks reference_masks/")
            instances.append({"image": _relative(refs / r.image_path, out), "mask": _relative(masks / r.mask_path, out),
                              "box": [round(v * 768) for v in r.bbox], "label": r.phrase})
        doc = {"prompt": case.prompt, "size": [768, 768], "seed": [42, 43, 44, 45]}
        layout = layouts / f"layout_{case.index:04d}.png" if layouts else None
        if layout is not None and layout.is_file():
            doc["layout"] = _relative(layout, out)
        written.append(_write(out, f"lamic-{case.index:04d}", {**doc, "instances": instances}))
    return written


def _mig_refs(categories: Path, refs: Path, masks: Path) -> dict[str, list[tuple[Path, Path, float]]]:
    """label -> [(image, mask, aspect)] from bench_instance_categories_filtered.json and the pack's folders."""
    from ctxgen.scene.images import image_size

    table: dict[str, list[tuple[Path, Path, float]]] = {}
    for cat in read_json(categories):
        name = cat["caption"].strip().replace(" ", "_")
        for k in cat.get("available_mask_image", []):
            base = f"{cat['index']:04d}_{k:02d}_{name}"
            img = refs / f"{base}.jpg"
            mask = next((m for m in (masks / f"{base}_mask.png", masks / f"{base}_mask.jpg") if m.is_file()), None)
            if img.is_file() and mask is not None:
                w, h = image_size(img.read_bytes(), img)
                table.setdefault(cat["caption"], []).append((img, mask, w / h))
    return table


def _cocomig(files: list[Path], out: Path, refs: Path, masks: Path) -> list[Path | None]:
    bench = [f for f in files if isinstance(read_json(f), dict)]
    cats = [f for f in files if f not in bench]
    if not cats:
        raise UserError("prepare cocomig needs bench_instance_categories_filtered.json (ContextGen's reference pack) "
                        "beside mig_bench.json")
    table = _mig_refs(cats[0], refs, masks)
    written = []
    for case in load_cocomig(bench):
        instances = []
        for inst in case.instances:
            choices = table.get(inst.label)
            if not choices:
                raise UserError(f"{cats[0]}: no reference image for label {inst.label!r} under {refs}")
            x1, y1, x2, y2 = inst.bbox
            aspect = (x2 - x1) / (y2 - y1)
            img, mask, _ = min(choices, key=lambda c: abs(c[2] - aspect))  # first on ties, as the pack sampler
            instances.append({"image": _relative(img, out), "mask": _relative(mask, out),
                              "box_norm": [float(v) for v in inst.bbox], "label": inst.label})
        doc = {"prompt": case.caption.strip(), "size": [512, 512], "seed": 42, "fit": "distort",
               "instances": instances}
        written.append(_write(out, f"cocomig-{case.key.zfill(4)}", doc))
    return written


def _layoutsam(files: list[Path], out: Path) -> list[Path | None]:
    written = []
    for case in load_layoutsam(files):
        boxes = case.extra.get("boxes") or [r.bbox for r in case.regions]
        instances = []
        for region, box in zip(case.regions, boxes):
            if region.ref_image is None or region.ref_mask is None:
                raise UserError(f"{files[-1]} index {case.index}: prepare needs ContextGen's sampled file with "
                                "segments[].valid_bbox[0].image_path and mask_path")
            instances.append({"image": _relative(Path(region.ref_image), out),
                              "mask": _relative(Path(region.ref_mask), out),
                              "box_norm": [float(v) for v in box], "label": region.caption[:80]})
        doc = {"prompt": case.caption, "size": [768, 768], "seed": 42, "instances": instances[:16]}
        written.append(_write(out, f"layoutsam-{case.index:04d}", doc))
    return written


def prepare_scenes(bench: str, files: list[Path], out: Path, refs: Path | None = None, masks: Path | None = None,
                   layouts: Path | None = None) -> tuple[list[Path], int]:
    """Write the scenes of `bench`; returns (files written, files already up to date)."""
    root = files[0].parent
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if bench == "lamic":
        done = _lamic(files, out, refs or root / "reference_images", masks or root / "reference_masks", layouts)
    elif bench == "cocomig":
        done = _cocomig(files, out, refs or root / "reference_images", masks or root / "reference_masks")
    elif bench == "layoutsam":
        done = _layoutsam(files, out)
    else:
        from ctxgen.core.errors import UsageError

        raise UsageError(f"prepare {bench!r}: use lamic, cocomig or layoutsam")
    written = [p for p in done if p is not None]
    return written, len(done) - len(written)
