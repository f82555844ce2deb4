"""What a valid record is: every check at once, one line per problem, naming the field (R1, R2, R8, R12). Torch-free.

`pixels=False` is the decode-free level used while packing and importing: image headers only (sizes, the pixel
cap), but masks and alpha cut-outs are decoded, since an empty mask is only visible in its pixels.
`pixels=True` (`ctxgen dataset validate`) decodes every image as training will.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ctxgen.core.env import max_pixels
from ctxgen.core.units import TOKEN
from ctxgen.dataset.record import KINDS, Box, ImageData, Record, scale_box, training_canvas
from ctxgen.scene.schema import MAX_INSTANCES, Fit, IcaMode

FITS: tuple[str, ...] = Fit.__args__  # type: ignore[attr-defined]
ICAS: tuple[str, ...] = IcaMode.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Problem:
    """One problem of a record: the field path and a one-line message."""

    field: str
    message: str
    reason: str = "invalid"  # a short category for summaries: missing-file, empty-mask, box-outside, ...

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class _Checker:
    def __init__(self, pixels: bool):
        self.pixels, self.problems = pixels, []
        self.limit = max_pixels()

    def add(self, where: str, message: str, reason: str = "invalid") -> None:
        self.problems.append(Problem(where, message, reason))

    def size(self, img: ImageData, where: str) -> tuple[int, int] | None:
        """(w, h) from the header (or the decoded pixels with `pixels`), checked against the pixel cap."""
        from ctxgen.scene.images import ImageError

        try:
            w, h = img.size()
            if w * h > self.limit:
                self.add(where, f"{img.name}: image is {w}x{h} = {w * h:,} pixels, above the limit of "
                                f"{self.limit:,}; downscale it (or raise CTXGEN_MAX_PIXELS)", "too-large")
                return None
            if self.pixels:
                img.decode()
            return w, h
        except ImageError as exc:
            self.add(where, f"{img.name}: {exc.reason}", "unreadable")
            return None

    def mask(self, image: ImageData, mask: ImageData | None, fields: tuple[str, str],
             size: tuple[int, int] | None) -> None:
        """R2: a mask file of the image's size with some pixel >= 128, or an alpha channel with one."""
        from ctxgen.scene.images import ImageError

        field = fields[1] if mask is not None else fields[0]
        try:
            if mask is None:
                if not image.has_alpha():
                    self.add(field, f"{image.name} has no transparency to use as its mask; store an RGBA cut-out "
                             "or a mask image", "no-mask")
                    return
                values, name = image.decode()[..., 3], image.name  # (h, w) alpha
            else:
                values, name = mask.decode_mask(), mask.name  # (h, w)
        except ImageError as exc:
            self.add(field, f"{exc.path.name}: {exc.reason}", "unreadable")
            return
        if size is not None and values.shape != (size[1], size[0]):
            self.add(field, f"mask {name} is {values.shape[1]}x{values.shape[0]} but image {image.name} is "
                     f"{size[0]}x{size[1]}; they must be the same size", "mask-size")
        elif not (values >= 128).any():
            self.add(field, f"mask of {image.name} is empty (no pixel >= 128); white (or opaque) marks the subject",
                     "empty-mask")

    def box(self, box: Box | None, where: str, frame: tuple[int, int] | None, what: str) -> None:
        """A finite x1 < x2, y1 < y2 box inside the frame (w, h)."""
        if box is None:
            return
        if len(box) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
            self.add(where, f"needs 4 finite numbers [x1, y1, x2, y2]; got {list(box)}")
            return
        x1, y1, x2, y2 = box
        if x2 <= x1 or y2 <= y1:
            self.add(where, f"[{x1:g}, {y1:g}, {x2:g}, {y2:g}] has no area (needs x2 > x1 and y2 > y1)")
        elif frame is not None and (x1 < 0 or y1 < 0 or x2 > frame[0] or y2 > frame[1]):
            self.add(where, f"[{x1:g}, {y1:g}, {x2:g}, {y2:g}] is not inside the {what} ({frame[0]}x{frame[1]})",
                     "box-outside")


def check_record(rec: Record, pixels: bool = True, canvas: tuple[int, int] | None = None) -> list[Problem]:
    """Every problem of one record. `canvas`: the training size to check boxes against (None: training_canvas)."""
    c = _Checker(pixels)
    for name in ("id", "subset", "prompt"):
        if not isinstance(getattr(rec, name), str) or not getattr(rec, name).strip():
            c.add(name, "must not be empty")
    if rec.fit is not None and rec.fit not in FITS:
        c.add("fit", f"{rec.fit!r} is not one of {', '.join(FITS)}")
    if rec.ica is not None and rec.ica not in ICAS:
        c.add("ica", f"{rec.ica!r} is not one of {', '.join(ICAS)}")
    frame = c.size(rec.target, "target")
    if rec.rejected is not None:
        c.size(rec.rejected, "rejected")
    if rec.layout is not None and c.size(rec.layout, "layout") is not None and not rec.layout.has_alpha():
        c.add("layout", f"layout image must be RGBA: {rec.layout.name} has no alpha channel", "no-mask")
    if not 1 <= len(rec.instances) <= MAX_INSTANCES:
        c.add("instances", f"needs 1 to {MAX_INSTANCES} instances; got {len(rec.instances)}", "instance-count")
    for i, inst in enumerate(rec.instances):
        _instance(c, rec, i, frame)
    if frame is not None:
        _canvas(c, rec, frame, canvas)
    return c.problems


def _instance(c: _Checker, rec: Record, i: int, frame: tuple[int, int] | None) -> None:
    inst, where = rec.instances[i], f"instances[{i}]"
    size = c.size(inst.image, f"{where}.image")
    if inst.mask is not None and size is not None:
        mask_size = c.size(inst.mask, f"{where}.mask")
        size = size if mask_size is not None else None
    if size is not None:
        c.mask(inst.image, inst.mask, (f"{where}.image", f"{where}.mask"), size)
    c.box(inst.box, f"{where}.box", frame, "target")
    if inst.kind not in KINDS:
        c.add(f"{where}.kind", f"{inst.kind!r} is not one of {', '.join(KINDS)}")
    if inst.fit is not None and inst.fit not in FITS:
        c.add(f"{where}.fit", f"{inst.fit!r} is not one of {', '.join(FITS)}")
    enhanced = None
    if inst.enhanced_image is not None:
        enhanced = c.size(inst.enhanced_image, f"{where}.enhanced_image")
        if enhanced is not None:
            c.mask(inst.enhanced_image, inst.enhanced_mask, (f"{where}.enhanced_image", f"{where}.enhanced_mask"),
                   enhanced)
    elif inst.enhanced_mask is not None:
        c.add(f"{where}.enhanced_mask", "given without enhanced_image")
    c.box(inst.valid_box, f"{where}.valid_box", enhanced or size, "enhanced reference")
    if inst.face_image is not None:
        c.size(inst.face_image, f"{where}.face_image")
    if inst.loc_point is not None and frame is not None:
        x, y = inst.loc_point
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= frame[0] and 0 <= y <= frame[1]):
            c.add(f"{where}.loc_point", f"({x:g}, {y:g}) is not inside the target ({frame[0]}x{frame[1]})",
                  "box-outside")


def _canvas(c: _Checker, rec: Record, frame: tuple[int, int], canvas: tuple[int, int] | None) -> None:
    """After resizing the target to the training canvas, every box still covers at least one 16-px token."""
    size = canvas or training_canvas(*frame)
    bad = {p.field for p in c.problems}
    for i, inst in enumerate(rec.instances):
        if f"instances[{i}].box" in bad:
            continue
        x1, y1, x2, y2 = scale_box(inst.box, frame, size)
        if 0 < x2 - x1 < TOKEN or 0 < y2 - y1 < TOKEN:
            c.add(f"instances[{i}].box", f"is {x2 - x1:.1f}x{y2 - y1:.1f} px once the target is resized to the "
                  f"{size[0]}x{size[1]} training canvas, under one {TOKEN}-px token", "box-too-small")


def validate_dataset(root, canvas: tuple[int, int] | None = None, progress=None) -> tuple[int, list[dict]]:
    """Check every record of every shard (decoding every image) and ids across shards; (records, problems).

    Each problem is {"shard", "row", "id", "field", "message", "reason"}; a shard that cannot be opened is one
    problem and the others are still checked.
    """
    from ctxgen.core.errors import UserError
    from ctxgen.dataset.arrow import RowError
    from ctxgen.dataset.shards import DatasetReader, list_shards

    problems: list[dict] = []
    seen: dict[str, str] = {}
    count = 0

    def add(shard, row, rid, field, message, reason="invalid"):
        problems.append({"shard": shard, "row": row, "id": rid, "field": field, "message": message, "reason": reason})

    for path in list_shards(root):
        try:
            reader = DatasetReader(path)
        except UserError as exc:
            add(path.name, None, None, "file", str(exc).split(": ", 1)[-1], "unreadable")
            continue
        for i in range(len(reader)):
            count += 1
            try:
                rec = reader.record(i)
            except RowError as exc:
                add(path.name, i, getattr(exc, "record_id", None), "row", getattr(exc, "detail", str(exc)))
                continue
            except UserError as exc:
                add(path.name, i, None, "row", str(exc), "unreadable")
                continue
            where = f"{path.name}:{i}"
            if rec.id in seen:
                add(path.name, i, rec.id, "id", f"duplicate id: {seen[rec.id]} has it too", "duplicate-id")
            seen.setdefault(rec.id, where)
            for p in check_record(rec, pixels=True, canvas=canvas):
                add(path.name, i, rec.id, p.field, p.message, p.reason)
            if progress is not None:
                progress(count)
    return count, problems
