"""A deterministic synthetic dataset: textured shapes on backgrounds with exact masks and boxes (tests, demos).

Every record is drawn from a PCG64 stream keyed by (seed, index): 2-4 shapes (circle, square, triangle, diamond,
ring; solid, stripes, checker, dots or gradient) pasted on a gradient background and saved as a JPEG target.
Each box is the exact tight box of its shape. References are RGBA cut-outs (even instances) or RGB JPEG + mask
PNG (odd ones). The `basic` subset also carries a repainted (rotated) reference with its `valid_box`; the
`composite` subset a `face` instance with an aligned face crop. Every third record has a `rejected` image: the
references pasted as a flat copy-paste collage. Same seed, same bytes. Torch-free.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ctxgen.dataset.record import ImageData, InstanceRecord, Record

SHAPES = ("circle", "square", "triangle", "diamond", "ring")
TEXTURES = ("solid", "stripes", "checker", "dots", "gradient")
COLOURS = {"red": (220, 50, 47), "green": (60, 170, 80), "blue": (40, 110, 220), "yellow": (235, 200, 40),
           "purple": (140, 70, 180), "orange": (240, 130, 30), "teal": (30, 160, 160), "pink": (235, 110, 170)}
SUBSETS = ("basic", "composite")
SKIN = (224, 180, 150)


def _encode(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _shape_mask(shape: str, w: int, h: int) -> np.ndarray:
    """bool (h, w): the shape touching all four sides of its w x h box, so the box is its exact tight box."""
    im = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(im)
    if shape == "circle":
        d.ellipse([0, 0, w - 1, h - 1], fill=255)
    elif shape == "square":
        d.rectangle([0, 0, w - 1, h - 1], fill=255)
    elif shape == "triangle":
        d.polygon([(w // 2, 0), (0, h - 1), (w - 1, h - 1)], fill=255)
    elif shape == "diamond":
        d.polygon([(w // 2, 0), (w - 1, h // 2), (w // 2, h - 1), (0, h // 2)], fill=255)
    else:  # ring
        d.ellipse([0, 0, w - 1, h - 1], fill=255)
        d.ellipse([w // 4, h // 4, w - 1 - w // 4, h - 1 - h // 4], fill=0)
    return np.asarray(im) >= 128


def _texture(kind: str, w: int, h: int, a: tuple, b: tuple, rng: np.random.Generator) -> np.ndarray:
    """uint8 (h, w, 3): colour a patterned with colour b."""
    yy, xx = np.mgrid[0:h, 0:w]
    period = int(rng.integers(6, 14))
    if kind == "solid":
        t = np.zeros((h, w))
    elif kind == "stripes":
        t = ((xx + yy) // period) % 2
    elif kind == "checker":
        t = (xx // period + yy // period) % 2
    elif kind == "dots":
        t = (np.hypot(xx % period - period / 2, yy % period - period / 2) < period / 3).astype(float)
    else:
        t = xx / max(1, w - 1)
    t = t[:, :, None].astype(np.float32)  # (h, w, 1)
    return (np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t).astype(np.uint8)


def _face(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """A face-like disc (skin, two eyes, a mouth) and its mask."""
    im = Image.new("RGB", (w, h), SKIN)
    d = ImageDraw.Draw(im)
    d.ellipse([w * 0.25, h * 0.3, w * 0.4, h * 0.45], fill=(30, 30, 30))
    d.ellipse([w * 0.6, h * 0.3, w * 0.75, h * 0.45], fill=(30, 30, 30))
    d.arc([w * 0.3, h * 0.45, w * 0.7, h * 0.75], 20, 160, fill=(150, 40, 40), width=max(2, w // 20))
    return np.asarray(im), _shape_mask("circle", w, h)


def _background(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    top, bottom = rng.integers(40, 220, 3), rng.integers(40, 220, 3)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]  # (h, 1, 1)
    return np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).astype(np.uint8)


def _reference(rgb: np.ndarray, mask: np.ndarray, k: int, stem: str) -> tuple[ImageData, ImageData | None]:
    """Even instances: one RGBA cut-out; odd ones: an RGB JPEG plus an L mask PNG."""
    alpha = (mask * 255).astype(np.uint8)
    if k % 2 == 0:
        rgba = np.dstack([rgb, alpha])  # (h, w, 4)
        return ImageData(_encode(Image.fromarray(rgba, "RGBA"), "PNG"), f"{stem}_{k}.png"), None
    return (ImageData(_encode(Image.fromarray(rgb), "JPEG"), f"{stem}_{k}.jpg"),
            ImageData(_encode(Image.fromarray(alpha, "L"), "PNG"), f"{stem}_{k}_mask.png"))


def _enhanced(rgb: np.ndarray, mask: np.ndarray, k: int, stem: str, margin: int):
    """The 'repainted' reference: rotated a quarter turn inside a grey frame; its mask and the subject's box."""
    rot, rmask = np.rot90(rgb), np.rot90(mask)
    h, w = rot.shape[:2]
    frame = np.full((h + 2 * margin, w + 2 * margin, 3), 128, np.uint8)
    frame[margin:margin + h, margin:margin + w][rmask] = rot[rmask]
    fmask = np.zeros(frame.shape[:2], np.uint8)
    fmask[margin:margin + h, margin:margin + w] = rmask * 255
    box = (float(margin), float(margin), float(margin + w), float(margin + h))
    return (ImageData(_encode(Image.fromarray(frame), "JPEG"), f"{stem}_{k}_kontext.jpg"),
            ImageData(_encode(Image.fromarray(fmask, "L"), "PNG"), f"{stem}_{k}_kontext_mask.png"), box)


def synthetic_record(index: int, seed: int = 0, size: int = 256, subsets: tuple[str, ...] = SUBSETS) -> Record:
    """Record `index` of the synthetic dataset for `seed` (deterministic bytes)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))
    subset = subsets[index % len(subsets)]
    w, h = size, (size if index % 3 else size * 3 // 4)
    target = _background(w, h, rng)
    stem = f"{index:06d}"
    instances, phrases, pasted = [], [], []
    for k in range(int(rng.integers(2, 5))):
        bw, bh = (int(v) for v in rng.integers(int(0.2 * size), int(0.42 * size), 2))
        x, y = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
        face = subset == "composite" and k == 0
        shape, tex = SHAPES[int(rng.integers(len(SHAPES)))], TEXTURES[int(rng.integers(len(TEXTURES)))]
        (na, ca), (_, cb) = (list(COLOURS.items())[int(i)] for i in rng.choice(len(COLOURS), 2, replace=False))
        rgb, mask = _face(bw, bh) if face else (_texture(tex, bw, bh, ca, cb, rng), _shape_mask(shape, bw, bh))
        target[y:y + bh, x:x + bw][mask] = rgb[mask]
        pasted.append((rgb, mask, x, y))
        image, mask_data = _reference(rgb, mask, k, stem)
        phrase = "a smiling face" if face else f"a {na} {tex} {shape}"
        extra: dict = {}
        if face:
            crop = Image.fromarray(np.dstack([rgb, (mask * 255).astype(np.uint8)]), "RGBA").resize((64, 64))
            extra = {"kind": "face", "face_image": ImageData(_encode(crop, "PNG"), f"{stem}_{k}_aligned_face.png")}
        elif subset == "basic":
            enh, enh_mask, vbox = _enhanced(rgb, mask, k, stem, margin=int(rng.integers(4, 24)))
            extra = {"enhanced_image": enh, "enhanced_mask": enh_mask, "valid_box": vbox}
        instances.append(InstanceRecord(image=image, mask=mask_data, box=(float(x), float(y), float(x + bw),
                                        float(y + bh)), label="face" if face else shape, phrase=phrase, **extra))
        phrases.append(phrase)
    rejected = None
    if index % 3 == 0:
        flat = np.full((h, w, 3), 128, np.uint8)
        for rgb, mask, x, y in pasted:
            flat[y:y + mask.shape[0], x:x + mask.shape[1]][mask] = rgb[mask]
        rejected = ImageData(_encode(Image.fromarray(flat), "JPEG"), f"{stem}_rejected.jpg")
    return Record(id=f"synthetic-{index:06d}", subset=subset, prompt=f"A photo of {', '.join(phrases)}",
                  target=ImageData(_encode(Image.fromarray(target), "JPEG"), f"{stem}.jpg"),
                  instances=tuple(instances), rejected=rejected, seed=index if index % 2 else None,
                  metadata={"synthetic": {"seed": seed, "index": index}})


def synthetic_items(items: tuple, options: dict) -> tuple[list[Record], list[dict]]:
    """One chunk of `make_synthetic`: the records of these indices."""
    subsets = tuple(options["subsets"])
    return [synthetic_record(i, options["seed"], options["size"], subsets) for i in items], []


def make_synthetic(out: Path, n: int, seed: int = 0, size: int = 256, subsets: tuple[str, ...] = SUBSETS,
                   per_shard: int = 500, workers: int = 1, force: bool = False, progress=None):
    """Write a valid dataset folder of n synthetic records (deterministic bytes for a given seed)."""
    from ctxgen.dataset.build import build, plan_jobs

    options = {"seed": seed, "size": size, "subsets": list(subsets)}
    jobs = plan_jobs(synthetic_items, list(range(n)), options, per_shard)
    return build(Path(out), jobs, workers=workers, force=force, progress=progress,
                 source={"synthetic": options | {"n": n}})


def _rgb_and_mask(image: ImageData, mask: ImageData | None) -> tuple[bytes, bytes]:
    """A reference as the IMIG files hold it: an RGB JPEG crop and a mask PNG."""
    if mask is not None:
        return image.data, mask.data
    rgba = image.decode()  # (h, w, 4)
    return (_encode(Image.fromarray(np.ascontiguousarray(rgba[..., :3])), "JPEG"),
            _encode(Image.fromarray(rgba[..., 3] >= 128), "PNG"))


def _imig_entry(rec: Record, i: int, folder: Path, composite: bool) -> dict:
    """Write one record's files in the IMIG layout (D2) and return its JSON entry."""
    stem = f"{i:06d}"
    (folder / ("composite_images" if composite else "data") / f"{stem}.jpg").write_bytes(rec.target.data)
    refs, faces, boxes = [], [], []
    for k, inst in enumerate(rec.instances):
        rgb, mask = _rgb_and_mask(inst.image, inst.mask)
        crops, masks = ("reference_masks", "reference_masks") if composite else ("instance_data", "masked_instance_data")
        (folder / crops / f"{stem}_{k}.jpg").write_bytes(rgb)
        (folder / masks / f"{stem}_{k}_mask.png").write_bytes(mask)
        box = [int(v) for v in inst.box]
        if composite:
            face = inst.kind == "face"
            if face:
                (folder / "aligned_faces" / f"{stem}_{k}_aligned_face.png").write_bytes(inst.face_image.data)
            boxes.append(None if face else {"bbox": box, "score": 0.9})
            faces.append({"target": box, "ref": [0, 0, 8, 8], "aligned_face_bbox": [8, 8, 56, 56], "score": 0.8}
                         if face else None)
            continue
        ref = {"index": k, "bbox": box, "phrase": inst.phrase}
        if inst.enhanced_image is not None:
            (folder / "kontext_data" / f"{stem}_{k}.jpg").write_bytes(inst.enhanced_image.data)
            (folder / "masked_kontext_data" / f"{stem}_{k}_mask.png").write_bytes(inst.enhanced_mask.data)
            ref["valid_bbox"] = [int(v) for v in inst.valid_box]
        refs.append(ref)
    if composite:
        phrases = [inst.phrase for inst in rec.instances]
        return {"index": i, "prompt": rec.prompt, "instance": phrases, "instance_prompt": phrases,
                "indices": list(range(len(phrases))), "bbox": boxes, "face_bbox": faces}
    return {"index": i, "prompt": rec.prompt, "reference_images": refs}


def write_imig_tree(root: Path, n: int, seed: int = 0, size: int = 256) -> Path:
    """The synthetic records laid out as the published IMIG-100K folders (imig-basic/, imig-composite/; D2)."""
    import json

    root = Path(root)
    folders = {"basic": ("imig-basic", ("data", "instance_data", "masked_instance_data", "kontext_data",
                                        "masked_kontext_data")),
               "composite": ("imig-composite", ("composite_images", "reference_masks", "aligned_faces"))}
    entries: dict[str, list] = {"basic": [], "composite": []}
    for name, subs in folders.values():
        for sub in subs:
            (root / name / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rec = synthetic_record(i, seed, size)
        folder = root / folders[rec.subset][0]
        entries[rec.subset].append(_imig_entry(rec, i, folder, rec.subset == "composite"))
    for subset, (name, _) in folders.items():
        (root / name / "filtered_prompts.json").write_text(json.dumps(entries[subset], indent=1))
    return root
