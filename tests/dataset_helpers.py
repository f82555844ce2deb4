"""Builders for the dataset tests: a small hand-made IMIG-100K tree (data-spec D2) and its broken variants.

The tree is written file by file from D2's names, independently of ctxgen's own synthetic IMIG writer, so the
importer is tested against the published layout rather than against itself.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw


def jpeg(w: int, h: int, colour: tuple = (90, 140, 200)) -> bytes:
    """A w x h JPEG with a diagonal gradient (so truncating it breaks its pixels, not its header)."""
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([(xx * 255 // max(1, w - 1)), (yy * 255 // max(1, h - 1)), np.full((h, w), colour[2])], -1)
    buf = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def mask_png(w: int, h: int, empty: bool = False) -> bytes:
    """A 1-bit PNG mask (as the published data stores them): a white ellipse, or nothing when `empty`."""
    im = Image.new("1", (w, h), 0)
    if not empty:
        ImageDraw.Draw(im).ellipse([1, 1, w - 2, h - 2], fill=1)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def rgba_png(w: int, h: int) -> bytes:
    im = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse([2, 2, w - 3, h - 3], fill=(220, 180, 150, 255))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


BASIC = [
    {"index": 0, "prompt": "a cat next to a dog", "nouns": ["cat", "dog"], "reference_images": [
        {"index": 0, "bbox": [10, 20, 110, 140], "phrase": "a cat", "valid_bbox": [4, 6, 60, 70]},
        {"index": 1, "bbox": [120, 30, 250, 200], "phrase": "a dog"}]},
    {"index": 3, "prompt": "a red car on a road", "reference_images": [
        {"index": 2, "bbox": [30, 40, 200, 150], "phrase": "a red car"}]},
]
COMPOSITE = [
    {"index": 7, "prompt": "a man with a hat", "instance": ["a man", "a hat"], "instance_prompt": ["man", "hat"],
     "indices": [0, 2], "bbox": [None, {"bbox": [150, 10, 240, 90], "score": 0.91}],
     "face_bbox": [{"target": [20, 30, 120, 140], "ref": [5, 5, 50, 60], "aligned_face_bbox": [10, 10, 90, 90],
                    "score": 0.7}, None]},
]


def write_fake_imig(root: Path) -> Path:
    """imig-basic/ (2 records: one with a repainted reference) and imig-composite/ (1 record with a face)."""
    b, c = root / "imig-basic", root / "imig-composite"
    files = {
        b / "data/000000.jpg": jpeg(256, 256), b / "data/000003.jpg": jpeg(320, 240, (200, 40, 40)),
        b / "instance_data/000000_0.jpg": jpeg(100, 120), b / "masked_instance_data/000000_0_mask.png": mask_png(100, 120),
        b / "kontext_data/000000_0.jpg": jpeg(64, 80), b / "masked_kontext_data/000000_0_mask.png": mask_png(64, 80),
        b / "instance_data/000000_1.jpg": jpeg(130, 170), b / "masked_instance_data/000000_1_mask.png": mask_png(130, 170),
        b / "instance_data/000003_2.jpg": jpeg(170, 110), b / "masked_instance_data/000003_2_mask.png": mask_png(170, 110),
        c / "composite_images/000007.jpg": jpeg(256, 256, (10, 200, 10)),
        c / "reference_masks/000007_0.jpg": jpeg(90, 110), c / "reference_masks/000007_0_mask.png": mask_png(90, 110),
        c / "reference_masks/000007_0_masked.jpg": jpeg(90, 110),
        c / "reference_masks/000007_2.jpg": jpeg(80, 70), c / "reference_masks/000007_2_mask.png": mask_png(80, 70),
        c / "aligned_faces/000007_0_aligned_face.png": rgba_png(96, 96),
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (b / "filtered_prompts.json").write_text(json.dumps(BASIC, indent=2))
    (c / "filtered_prompts.json").write_text(json.dumps(COMPOSITE, indent=2))
    return root


def edit_json(path: Path, change) -> None:
    """Rewrite a filtered_prompts.json through change(entries) (which edits the list in place)."""
    entries = json.loads(path.read_text())
    change(entries)
    path.write_text(json.dumps(entries))


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    """A 12-record synthetic dataset in 3 shards (seed 0, 256 px): import this fixture into a test module."""
    from ctxgen.dataset.synthetic import make_synthetic

    out = tmp_path_factory.mktemp("synthetic") / "data"
    make_synthetic(out, 12, per_shard=5)
    return out
