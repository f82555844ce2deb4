"""Tiny benchmark files and generated images for the eval tests (hand-made pixels, known answers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

RED, BLUE, GREY = (220, 20, 20), (20, 40, 220), (127, 127, 127)


def square(size: int, boxes: list[tuple[list[int], tuple[int, int, int]]], bg=GREY) -> Image.Image:
    """A grey canvas with filled rectangles [x1, y1, x2, y2) in the given colours."""
    arr = np.full((size, size, 3), bg, dtype=np.uint8)
    for (x1, y1, x2, y2), colour in boxes:
        arr[y1:y2, x1:x2] = colour
    return Image.fromarray(arr)


def write_cocomig(root: Path) -> tuple[Path, Path]:
    """Two cases (L2): case 0 right (red dog, blue cat where asked), case 1 with the dog painted blue."""
    bench = {"0": {"caption": "a photo of a red dog and a blue cat ", "image_id": "1",
                   "segment": [{"bbox": [0.125, 0.125, 0.5, 0.5], "label": "a red dog"},
                               {"bbox": [0.5, 0.5, 0.875, 0.875], "label": "a blue cat"}]},
             "1": {"caption": "a photo of a red dog and a blue cat ", "image_id": "2",
                   "segment": [{"bbox": [0.125, 0.125, 0.5, 0.5], "label": "a red dog"},
                               {"bbox": [0.5, 0.5, 0.875, 0.875], "label": "a blue cat"}]}}
    (root / "images").mkdir(parents=True, exist_ok=True)
    path = root / "mig_bench.json"
    path.write_text(json.dumps(bench))
    square(512, [([64, 64, 256, 256], RED), ([256, 256, 448, 448], BLUE)]).save(root / "images" / "0000.png")
    square(512, [([64, 64, 256, 256], BLUE), ([256, 256, 448, 448], BLUE)]).save(root / "images" / "0001.png")
    return path, root / "images"


def write_lamic(root: Path, samples: int = 1) -> tuple[Path, Path]:
    """Two cases: 2 references (a face, an object) and 4 objects; masks beside; vqa questions; boxes."""
    refs, masks, images = root / "reference_images", root / "reference_masks", root / "images"
    for d in (refs, masks, images):
        d.mkdir(parents=True, exist_ok=True)
    items = []
    for index, n in ((0, 2), (1, 4)):
        references = []
        for j in range(n):
            name = f"face_{index}_{j}.jpg" if (index, j) == (0, 0) else f"obj_{index}_{j}.jpg"
            square(64, [([8, 8, 56, 56], RED if j % 2 else BLUE)]).save(refs / name)
            square(64, [([8, 8, 56, 56], (255, 255, 255))], bg=(0, 0, 0)).convert("L").save(
                masks / name.replace(".jpg", "_mask.png"))
            references.append({"ref_index": j, "image_path": name, "phrase": ["dog", "cat", "ball", "cup"][j],
                               "bbox": [0.1 + 0.2 * j, 0.1, 0.3 + 0.2 * j, 0.5]})
        items.append({"index": index, "prompt": "a photo of a dog and a cat", "references": references,
                      "vqa_prompts": {"0": "Is there a dog?", "1": "Is there a cat?"}})
        for k in range(samples):
            square(96, [([10, 10, 40, 50], RED), ([50, 20, 90, 80], BLUE)]).save(images / f"{index:04d}_{k}.jpg")
    path = root / "lamicbench_plus.json"
    path.write_text(json.dumps(items))
    return path, images


def write_layoutsam(root: Path) -> tuple[Path, Path]:
    """Two eval rows with two regions each (pixel boxes of a 1000x1000 source), images 0000.png, 0001.png."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(2):
        rows.append({"image_id": i, "global_caption": "a red dog and a blue cat", "width": 1000, "height": 1000,
                     "bbox_list": str([[100, 100, 500, 500], [500, 500, 900, 900]]),
                     "region_captions": str(["a red dog", "a blue cat"]),
                     "detail_region_captions": str(["a small red dog", "a fluffy blue cat"]), "file_name": f"{i}.jpg"})
        square(96, [([10, 10, 48, 48], RED), ([48, 48, 86, 86], BLUE)]).save(root / "images" / f"{i:04d}.png")
    path = root / "layoutsam_eval.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path, root / "images"
