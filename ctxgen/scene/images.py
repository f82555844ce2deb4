"""Safe image reading: decoded-pixel cap, EXIF orientation, mode conversion, masks (R2; docs/spec.md). Torch-free."""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ctxgen.core.env import max_pixels
from ctxgen.core.errors import SceneError, UserError
from ctxgen.scene.model import Instance, Scene, file_problem

logger = logging.getLogger(__name__)

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # JPEG covers MPO; no plugins that shell out (EPS)
_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # more than 8 bits per grey sample
_ALPHA_MODES = ("LA", "La", "PA", "RGBa", "RGBA")
# Pillow's decoders signal corrupt or truncated data with any of these
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError, zlib.error)

Segmenter = Callable[[np.ndarray, Instance], np.ndarray]  # (rgb uint8 (h, w, 3), instance) -> uint8 (h, w)
Issues = list[tuple[str, str]]  # (field path, message), turned into scene issue lines at the end


@dataclass(frozen=True)
class RefImage:
    """A reference as read from disk, after R2: stored RGB colours and an L mask."""

    index: int
    rgb: np.ndarray  # uint8 (h, w, 3), stored colours (not premultiplied)
    mask: np.ndarray  # uint8 (h, w), 0..255 (alpha, mask file, or automatic segmentation)


class ImageError(UserError):
    """An image file that cannot be used; `reason` is the message without the path."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def open_image(path: Path, limit: int | None = None) -> Image.Image:
    """Fully decode one image file: pixel count checked from the header first, then EXIF orientation applied."""
    path = Path(path)
    problem = file_problem(path, "image file")
    if problem is not None:
        raise ImageError(path, problem)
    with open(path, "rb") as fh:
        head = fh.read(24)
    return _decode(path, path, head, limit)


def decode_image_bytes(data: bytes, name: str | Path, limit: int | None = None) -> Image.Image:
    """`open_image` for bytes held in memory (dataset shards, uploads); errors name `name`."""
    return _decode(io.BytesIO(data), Path(name), data[:24], limit)


def image_size(data: bytes, name: str | Path) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), from the header without decoding the pixels."""
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as im:
            w, h = im.size
            turned = im.getexif().get(0x0112) in (5, 6, 7, 8)  # orientations that swap width and height
            return (h, w) if turned else (w, h)
    except Image.UnidentifiedImageError:
        raise ImageError(Path(name), _unidentified(data[:24])) from None
    except _DECODE_ERRORS:
        raise ImageError(Path(name), "cannot decode the image header: the data is truncated or corrupt") from None


def _decode(source, path: Path, head: bytes, limit: int | None) -> Image.Image:
    limit = max_pixels() if limit is None else limit
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # Pillow's own limit counts as ours
            with Image.open(source, formats=FORMATS) as im:
                _check_pixels(path, im.size, limit)
                im.load()  # decode everything now: truncated files fail here, not later
                out = ImageOps.exif_transpose(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        reason = f"larger than Pillow's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS:,} pixels); downscale it"
        raise ImageError(path, reason) from None
    except Image.UnidentifiedImageError:
        raise ImageError(path, _unidentified(head)) from None
    except _DECODE_ERRORS as exc:
        logger.debug("decoding %s failed: %r", path, exc)
        raise ImageError(path, "cannot decode the image data: the file is truncated or corrupt; re-export it") from None
    for w in caught:
        if issubclass(w.category, UserWarning):  # Pillow on the data, e.g. corrupt EXIF: the pixels are fine
            logger.warning("%s: %s", path.name, " ".join(str(w.message).split()))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out


def _check_pixels(path: Path, size: tuple[int, int], limit: int) -> None:
    w, h = size
    if w * h == 0:
        raise ImageError(path, f"image has zero pixels ({w}x{h})")
    if w * h > limit:
        raise ImageError(path, f"image is {w}x{h} = {w * h:,} pixels, above the limit of {limit:,}; "
                               "downscale it (or raise CTXGEN_MAX_PIXELS)")


def _unidentified(head: bytes) -> str:
    """Why Pillow could not identify data from its first 24 bytes: empty, a zero-size PNG, or not an image at all."""
    if not head:  # PNG signature (8) + IHDR length/type (8) + width, height (8)
        return "file is empty (0 bytes)"
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) == 24:
        w, h = struct.unpack(">II", head[16:24])
        if w * h == 0:
            return f"image has zero pixels ({w}x{h})"
    return "not a readable image (PNG, JPEG, WebP, BMP, GIF or TIFF)"


def _grey8(im: Image.Image) -> Image.Image:
    """Wide grey -> 8-bit L by value range: 16-bit >> 8 (an I image holding only 0..255 is kept); float clipped."""
    if im.mode == "F":
        return im.convert("L")
    a = np.asarray(im)  # (h, w) uint16 for I;16*, int32 for I
    if im.mode == "I":
        a = np.clip(a, 0, 65535)
        if a.max() <= 255:
            return Image.fromarray(a.astype(np.uint8), "L")
    return Image.fromarray((a >> 8).astype(np.uint8), "L")


def _colour(im: Image.Image) -> Image.Image:
    """R2: any mode -> RGB, or RGBA when the file carries transparency (P with transparency -> RGBA first)."""
    if im.mode in _WIDE_GREY:
        return _grey8(im).convert("RGB")
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("RGB")


def _grey(im: Image.Image) -> Image.Image:
    """R2: a mask file -> L (luminance of the colours, as Pillow's convert("L"); wide grey scaled to 8 bits)."""
    if im.mode in _WIDE_GREY:
        return _grey8(im)
    return im if im.mode == "L" else _colour(im).convert("L")


def _pixels(path: Path, convert: Callable[[Image.Image], Image.Image], data: bytes | None = None) -> np.ndarray:
    im = open_image(path) if data is None else decode_image_bytes(data, path)
    try:
        return np.array(convert(im))  # writable copy, uint8 (h, w[, c])
    except ValueError:
        raise ImageError(path, f"colour mode {im.mode} cannot be converted; save it as RGB or RGBA") from None


def read_image(path: Path) -> np.ndarray:
    """One image after EXIF orientation and R2 mode conversion: uint8 (h, w, 3), or (h, w, 4) with alpha."""
    return _pixels(Path(path), _colour)


def read_image_rgb(path: Path) -> np.ndarray:
    """One image's stored colours, uint8 (h, w, 3) (alpha dropped, not composited)."""
    return np.ascontiguousarray(read_image(path)[..., :3])


def read_mask_file(path: Path) -> np.ndarray:
    """A mask image converted to L, uint8 (h, w) (R2)."""
    return _pixels(Path(path), _grey)


def image_from_bytes(data: bytes, name: str | Path) -> np.ndarray:
    """`read_image` for encoded bytes in memory: uint8 (h, w, 3) or (h, w, 4) (R2); errors name `name`."""
    return _pixels(Path(name), _colour, data)


def mask_from_bytes(data: bytes, name: str | Path) -> np.ndarray:
    """`read_mask_file` for encoded bytes in memory: uint8 (h, w) (R2)."""
    return _pixels(Path(name), _grey, data)


def check_references(scene: Scene) -> None:
    """Decode every reference, mask file and layout image and apply all R2/R12 checks (`ctxgen validate`)."""
    issues: Issues = []
    for inst in scene.instances:
        _reference(inst, None, issues, segment=False)
    _user_layout(scene.layout, issues)
    _raise_if_any(scene, issues)


def read_references(scene: Scene, segmenter: Segmenter | None = None) -> tuple[RefImage, ...]:
    """R2: every reference as stored RGB colours plus an L mask (alpha, a mask file, or `mask: auto`)."""
    issues: Issues = []
    refs = [_reference(inst, segmenter, issues, segment=True) for inst in scene.instances]
    _raise_if_any(scene, issues)
    return tuple(refs)


def read_user_layout(scene: Scene) -> np.ndarray | None:
    """R12: the user's layout image as stored (not resized), uint8 (H, W, 4); None for `layout: auto`."""
    issues: Issues = []
    layout = _user_layout(scene.layout, issues)
    _raise_if_any(scene, issues)
    return layout


def _raise_if_any(scene: Scene, issues: Issues) -> None:
    """All problems as one SceneError of `file:line:col field: message` lines, in file order."""
    if issues:
        raise SceneError([scene.issue(path, msg) for path, msg in sorted(issues, key=lambda it: scene.where(it[0]))])


def _reference(inst: Instance, segmenter: Segmenter | None, issues: Issues, segment: bool) -> RefImage | None:
    """Read one reference and its mask; problems go to `issues`. Without `segment`, `mask: auto` is not run."""
    field = f"instances[{inst.index}]"
    try:
        pixels = read_image(inst.image)  # (h, w, 3|4)
    except ImageError as exc:
        issues.append((f"{field}.image", f"{inst.image.name}: {exc.reason}"))
        return None
    rgb = np.ascontiguousarray(pixels[..., :3])  # (h, w, 3) stored colours
    if inst.mask_mode == "alpha":
        mask, where = _alpha_mask(inst, pixels, issues), "image"
    elif inst.mask_mode == "file":
        mask, where = _file_mask(inst, pixels.shape[:2], issues), "mask"
    elif not segment:
        return None
    elif segmenter is None:
        issues.append((f"{field}.mask", "`mask: auto` needs SAM 2 (automatic segmentation), which is not available "
                       "here; a mask file works too: `mask: path/to/mask.png`"))
        return None
    else:
        try:
            mask, where = _auto_mask(segmenter, rgb, inst), "mask"
        except UserError as exc:  # SAM missing or refused: said at the instance's `mask:` line
            issues.append((f"{field}.mask", str(exc)))
            return None
    if mask is None:
        return None
    if not (mask >= 128).any():  # R6 binarizes at 128: nothing would be left of the subject
        issues.append((f"{field}.{where}", _empty_message(inst)))
        return None
    return RefImage(inst.index, rgb, mask)


def _alpha_mask(inst: Instance, pixels: np.ndarray, issues: Issues) -> np.ndarray | None:
    if pixels.shape[2] == 4:
        return np.ascontiguousarray(pixels[..., 3])  # (h, w)
    issues.append((f"instances[{inst.index}].image", f"{inst.image.name} has no transparency to use as its mask; "
                   "save the cut-out as RGBA, or add `mask: <file>` or `mask: auto`"))
    return None


def _file_mask(inst: Instance, hw: tuple[int, int], issues: Issues) -> np.ndarray | None:
    field = f"instances[{inst.index}].mask"
    try:
        mask = read_mask_file(inst.mask)
    except ImageError as exc:
        issues.append((field, f"{inst.mask.name}: {exc.reason}"))
        return None
    if mask.shape != hw:
        issues.append((field, f"mask {inst.mask.name} is {mask.shape[1]}x{mask.shape[0]} but image "
                       f"{inst.image.name} is {hw[1]}x{hw[0]}; they must be the same size"))
        return None
    return mask


def _auto_mask(segmenter: Segmenter, rgb: np.ndarray, inst: Instance) -> np.ndarray:
    mask = np.asarray(segmenter(rgb, inst))
    if mask.shape != rgb.shape[:2] or mask.dtype != np.uint8:
        raise ValueError(f"segmenter returned {mask.dtype} {mask.shape}, expected uint8 {rgb.shape[:2]}")
    return mask


def _empty_message(inst: Instance) -> str:
    if inst.mask_mode == "alpha":
        return f"{inst.image.name} is fully transparent (no pixel has alpha >= 128); its subject must be opaque"
    if inst.mask_mode == "file":
        return f"mask {inst.mask.name} is empty (no pixel >= 128); white marks the subject"
    return f"SAM 2 found no subject in {inst.image.name}; add `point:` or `prompt_box:`, or give a mask file"


def _user_layout(path: Path | None, issues: Issues) -> np.ndarray | None:
    if path is None:
        return None
    try:
        pixels = read_image(path)  # (H, W, 3|4)
    except ImageError as exc:
        issues.append(("layout", f"{path.name}: {exc.reason}"))
        return None
    if pixels.shape[2] != 4:
        issues.append(("layout", f"layout image must be RGBA: {path.name} has no alpha channel (pixels with alpha "
                       ">= 128 are kept, the rest are left to the model)"))
        return None
    return pixels


def reference_issues(inst: Instance, issues: Issues) -> None:
    """Decode one reference and its mask and record R2 problems in `issues` (`mask: auto` is not run)."""
    _reference(inst, None, issues, segment=False)


def user_layout_issues(path: Path | None, issues: Issues) -> None:
    """Decode a user layout image and record R12 problems in `issues`."""
    _user_layout(path, issues)
