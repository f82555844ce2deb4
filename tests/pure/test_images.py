"""Safe image reading and R2 masks: pixel cap, truncation, mode conversions, EXIF, golden scene errors."""

from __future__ import annotations

import importlib.util
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from ctxgen.core.errors import SceneError, UserError
from ctxgen.scene.images import (ImageError, check_references, max_pixels, read_image, read_image_rgb, read_references,
                           read_user_layout)
from ctxgen.scene.model import load_scene

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BOX = "    box: [1, 2, 30, 40]\n"


def scene_with(write, image: str, extra: str = "", top: str = ""):
    return load_scene(write(f'prompt: p\n{top}instances:\n  - image: {image}\n{extra}' + BOX))


def check_issues(scene) -> list[str]:
    with pytest.raises(SceneError) as info:
        check_references(scene)
    return info.value.issues


def png_header(w: int, h: int) -> bytes:
    """A PNG signature and IHDR chunk for a w x h RGB image (no pixel data)."""
    body = b"IHDR" + struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body))


# ---- golden scene-level errors ----

def test_truncated_png_and_jpeg(write, workdir: Path) -> None:
    data = (workdir / "refs/cut.png").read_bytes()
    (workdir / "refs/half.png").write_bytes(data[: len(data) // 2])
    buf = io.BytesIO()
    Image.open(workdir / "refs/photo.png").save(buf, "JPEG", quality=95)
    (workdir / "refs/half.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    scene = load_scene(write("prompt: p\ninstances:\n  - image: refs/half.png\n" + BOX
                             + "  - image: refs/half.jpg\n    mask: refs/mask.png\n" + BOX))
    message = "cannot decode the image data: the file is truncated or corrupt; re-export it"
    assert check_issues(scene) == [f"s.yaml:3:12 instances[0].image: half.png: {message}",
                                   f"s.yaml:5:12 instances[1].image: half.jpg: {message}"]


def test_zero_size_and_empty_images(write, workdir: Path) -> None:
    (workdir / "refs/zero.png").write_bytes(png_header(0, 48) + b"\0" * 32)
    (workdir / "refs/empty.png").write_bytes(b"")
    (workdir / "refs/text.png").write_bytes(b"hello, this is not an image at all")
    scene = load_scene(write("prompt: p\ninstances:\n" + "".join(
        f"  - image: refs/{name}.png\n" + BOX for name in ("zero", "empty", "text"))))
    assert check_issues(scene) == [
        "s.yaml:3:12 instances[0].image: zero.png: image has zero pixels (0x48)",
        "s.yaml:5:12 instances[1].image: empty.png: file is empty (0 bytes)",
        "s.yaml:7:12 instances[2].image: text.png: not a readable image (PNG, JPEG, WebP, BMP, GIF or TIFF)"]


def test_pixel_cap_from_environment(write, monkeypatch: pytest.MonkeyPatch) -> None:
    scene = scene_with(write, "refs/cut.png")
    monkeypatch.setenv("CTXGEN_MAX_PIXELS", "1000")
    assert check_issues(scene) == ["s.yaml:3:12 instances[0].image: cut.png: image is 64x48 = 3,072 pixels, above "
                                   "the limit of 1,000; downscale it (or raise CTXGEN_MAX_PIXELS)"]
    monkeypatch.setenv("CTXGEN_MAX_PIXELS", "3072")
    check_references(scene)


def test_pixel_cap_is_checked_before_decoding(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(1) or original(self))
    monkeypatch.setenv("CTXGEN_MAX_PIXELS", "100")
    with pytest.raises(ImageError, match="above the limit of 100"):
        read_image(workdir / "refs/cut.png")
    assert decoded == []
    monkeypatch.delenv("CTXGEN_MAX_PIXELS")
    assert read_image(workdir / "refs/cut.png").shape == (48, 64, 4) and decoded


@pytest.mark.parametrize("pillow_limit", [1000, 2000])  # 3,072 pixels: Pillow's error (> 2x) and its warning
def test_pillow_bomb_limit_is_an_error_not_a_leak(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                  pillow_limit: int) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    with pytest.raises(ImageError) as info:
        read_image(workdir / "refs/cut.png")
    assert info.value.reason == f"larger than Pillow's decompression-bomb limit ({pillow_limit:,} pixels); downscale it"


def test_bad_pixel_cap_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXGEN_MAX_PIXELS", "lots")
    with pytest.raises(UserError, match="CTXGEN_MAX_PIXELS must be a positive integer"):
        max_pixels()
    monkeypatch.setenv("CTXGEN_MAX_PIXELS", "0")
    with pytest.raises(UserError):
        max_pixels()


def test_rgb_reference_without_mask(write) -> None:
    assert check_issues(scene_with(write, "refs/photo.png")) == [
        "s.yaml:3:12 instances[0].image: photo.png has no transparency to use as its mask; save the cut-out as RGBA, "
        "or add `mask: <file>` or `mask: auto`"]


def test_fully_transparent_reference(write) -> None:
    assert check_issues(scene_with(write, "refs/clear.png")) == [
        "s.yaml:3:12 instances[0].image: clear.png is fully transparent (no pixel has alpha >= 128); its subject "
        "must be opaque"]


def test_mask_size_mismatch_and_empty_mask(write, workdir: Path) -> None:
    Image.new("L", (32, 32), 255).save(workdir / "refs/small.png")
    Image.new("L", (64, 48), 100).save(workdir / "refs/dim.png")
    scene = load_scene(write("prompt: p\ninstances:\n"
                             "  - image: refs/photo.png\n    mask: refs/small.png\n" + BOX
                             + "  - image: refs/photo.png\n    mask: refs/dim.png\n" + BOX))
    assert check_issues(scene) == [
        "s.yaml:4:11 instances[0].mask: mask small.png is 32x32 but image photo.png is 64x48; they must be the same "
        "size",
        "s.yaml:7:11 instances[1].mask: mask dim.png is empty (no pixel >= 128); white marks the subject"]


def test_layout_image_must_be_rgba(write) -> None:
    scene = scene_with(write, "refs/cut.png", top="layout: refs/photo.png\n")
    expected = ["s.yaml:2:9 layout: layout image must be RGBA: photo.png has no alpha channel (pixels with alpha "
                ">= 128 are kept, the rest are left to the model)"]
    assert check_issues(scene) == expected
    with pytest.raises(SceneError) as info:
        read_user_layout(scene)
    assert info.value.issues == expected


def test_check_references_reports_everything_and_skips_auto(write, workdir: Path) -> None:
    (workdir / "refs/bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    scene = load_scene(write("prompt: p\nlayout: refs/photo.png\ninstances:\n  - image: refs/photo.png\n" + BOX
                             + "  - image: refs/photo.png\n    mask: auto\n" + BOX
                             + "  - image: refs/bad.png\n" + BOX))
    assert [line.split(" ")[:2] for line in check_issues(scene)] == [
        ["s.yaml:2:9", "layout:"], ["s.yaml:4:12", "instances[0].image:"], ["s.yaml:9:12", "instances[2].image:"]]


# ---- read_references (R2) ----

def test_rgba_colours_kept_as_stored(write, workdir: Path) -> None:
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[...] = (200, 100, 50, 10)
    rgba[10:20, 10:20] = (1, 2, 3, 255)
    Image.fromarray(rgba, "RGBA").save(workdir / "refs/faint.png")
    (ref,) = read_references(scene_with(write, "refs/faint.png"))
    assert ref.index == 0 and ref.rgb.dtype == np.uint8 and ref.rgb.shape == (48, 64, 3)
    assert np.array_equal(ref.rgb, rgba[..., :3]) and np.array_equal(ref.mask, rgba[..., 3])


def test_rgb_with_mask_file_converted_to_luminance(write, workdir: Path) -> None:
    Image.new("RGB", (64, 48), (100, 150, 200)).save(workdir / "refs/colour_mask.png")
    (ref,) = read_references(scene_with(write, "refs/photo.png", "    mask: refs/colour_mask.png\n"))
    expected = np.asarray(Image.new("RGB", (1, 1), (100, 150, 200)).convert("L"))[0, 0]
    assert ref.mask.shape == (48, 64) and (ref.mask == expected).all()
    assert np.array_equal(ref.rgb, np.asarray(Image.open(workdir / "refs/photo.png")))


def test_mask_auto_uses_the_segmenter(write) -> None:
    scene = scene_with(write, "refs/photo.png", "    mask: auto\n    point: [10, 20]\n")
    seen = []

    def segmenter(rgb: np.ndarray, inst) -> np.ndarray:
        seen.append((rgb.shape, rgb.dtype, inst.point))
        out = np.zeros(rgb.shape[:2], np.uint8)
        out[5:9, 5:9] = 255
        return out

    (ref,) = read_references(scene, segmenter=segmenter)
    assert seen == [((48, 64, 3), np.uint8, (10.0, 20.0))] and ref.mask.sum() == 16 * 255
    with pytest.raises(SceneError) as info:
        read_references(scene)
    assert info.value.issues == ["s.yaml:4:11 instances[0].mask: `mask: auto` needs SAM 2 (automatic segmentation), "
                                 "which is not available here; a mask file works too: `mask: path/to/mask.png`"]
    with pytest.raises(SceneError) as info:
        read_references(scene, segmenter=lambda rgb, inst: np.zeros(rgb.shape[:2], np.uint8))
    assert info.value.issues == ["s.yaml:4:11 instances[0].mask: SAM 2 found no subject in photo.png; add `point:` "
                                 "or `prompt_box:`, or give a mask file"]


def test_user_layout_returned_as_stored(write, workdir: Path) -> None:
    layout = np.random.default_rng(0).integers(0, 256, (80, 100, 4), dtype=np.uint8)
    Image.fromarray(layout, "RGBA").save(workdir / "refs/layout.png")
    got = read_user_layout(scene_with(write, "refs/cut.png", top="layout: refs/layout.png\n"))
    assert got.dtype == np.uint8 and np.array_equal(got, layout)
    assert read_user_layout(scene_with(write, "refs/cut.png")) is None


# ---- mode conversions ----

def saved(tmp_path: Path, im: Image.Image, name: str, **kw) -> Path:
    im.save(tmp_path / name, **kw)
    return tmp_path / name


def test_16bit_grey_scaled_by_value_range(tmp_path: Path) -> None:
    values = np.array([[0, 256, 65535, 1000]], np.uint16)
    path = saved(tmp_path, Image.fromarray(values), "g16.png")
    assert Image.open(path).mode == "I;16"
    got = read_image(path)
    assert got.shape == (1, 4, 3) and got[0, :, 0].tolist() == [0, 1, 255, 3] and (got == got[..., :1]).all()


def test_32bit_grey_i_mode(tmp_path: Path) -> None:
    low = saved(tmp_path, Image.fromarray(np.array([[0, 100, 255]], np.int32), "I"), "i8.tif")
    high = saved(tmp_path, Image.fromarray(np.array([[0, 300, 65535]], np.int32), "I"), "i16.tif")
    assert Image.open(high).mode == "I"
    assert read_image(low)[0, :, 0].tolist() == [0, 100, 255]
    assert read_image(high)[0, :, 0].tolist() == [0, 1, 255]


def test_cmyk_to_rgb(tmp_path: Path) -> None:
    red = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
    assert read_image(saved(tmp_path, red, "c.tif"))[0, 0].tolist() == [255, 0, 0]
    jpeg = read_image(saved(tmp_path, red, "c.jpg", quality=95))
    assert jpeg.shape == (8, 8, 3) and np.abs(jpeg[4, 4].astype(int) - [255, 0, 0]).max() <= 8


def test_palette_with_transparency_becomes_rgba(write, workdir: Path) -> None:
    p = Image.new("P", (64, 48), 0)
    p.putpalette([255, 0, 0, 0, 200, 0] + [0] * 762)
    p.paste(1, (8, 8, 40, 30))
    p.save(workdir / "refs/pal.png", transparency=0)
    got = read_image(workdir / "refs/pal.png")
    assert got.shape == (48, 64, 4) and got[0, 0, 3] == 0 and got[10, 10].tolist() == [0, 200, 0, 255]
    (ref,) = read_references(scene_with(write, "refs/pal.png"))
    assert int((ref.mask == 255).sum()) == 32 * 22 and int((ref.mask == 0).sum()) == 64 * 48 - 32 * 22
    p.save(workdir / "refs/pal_opaque.png")
    assert read_image(workdir / "refs/pal_opaque.png")[10, 10].tolist() == [0, 200, 0]


def test_la_l_and_1bit(tmp_path: Path) -> None:
    la = np.zeros((4, 6, 2), np.uint8)
    la[..., 0], la[..., 1] = 77, np.arange(6, dtype=np.uint8) * 50
    got = read_image(saved(tmp_path, Image.fromarray(la, "LA"), "la.png"))
    assert got.shape == (4, 6, 4) and (got[..., :3] == 77).all()
    assert got[0, :, 3].tolist() == [0, 50, 100, 150, 200, 250]
    grey = read_image(saved(tmp_path, Image.new("L", (3, 2), 9), "l.png"))
    assert grey.shape == (2, 3, 3) and (grey == 9).all()
    bits = Image.new("1", (4, 1), 0)
    bits.putpixel((2, 0), 1)
    assert read_image(saved(tmp_path, bits, "b.png"))[0, :, 0].tolist() == [0, 0, 255, 0]


def test_exif_orientation_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: the left edge becomes the top
    path = saved(tmp_path, im, "rot.jpg", exif=exif, quality=95)
    got = read_image_rgb(path)
    assert got.shape == (40, 20, 3)
    assert got[5, 10, 0] > 200 and got[5, 10, 2] < 50 and got[35, 10, 2] > 200 and got[35, 10, 0] < 50


# ---- examples ----

@pytest.mark.parametrize("name", ["park", "nested", "rgb_mask", "six", "user_layout"])
def test_examples_load_and_read(name: str) -> None:
    scene = load_scene(EXAMPLES / f"{name}.yaml")
    check_references(scene)
    refs = read_references(scene)
    assert len(refs) == len(scene.instances) and scene.warnings == ()
    assert all(r.rgb.shape[:2] == r.mask.shape and (r.mask >= 128).any() for r in refs)


def test_example_scene_shapes() -> None:
    counts = {name: len(load_scene(EXAMPLES / f"{name}.yaml").instances) for name in ("park", "six")}
    assert counts == {"park": 3, "six": 6} and load_scene(EXAMPLES / "six.yaml").size == (1024, 1024)
    outer, inner = (inst.box for inst in load_scene(EXAMPLES / "nested.yaml").instances)
    assert outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]
    sizes = [p.stat().st_size for p in (EXAMPLES / "refs").iterdir()]
    assert len(sizes) >= 8 and max(sizes) <= 100_000


def test_example_refs_come_from_the_generator() -> None:
    spec = importlib.util.spec_from_file_location("make_refs", EXAMPLES / "make_refs.py")
    make_refs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_refs)
    ball = np.asarray(make_refs.ball())
    assert ball.shape == (300, 300, 4) and 0 < (ball[..., 3] == 0).mean() < 0.5
    assert 0 < ((ball[..., 3] > 0) & (ball[..., 3] < 255)).sum()  # anti-aliased rim
    assert np.array_equal(ball, np.asarray(Image.open(EXAMPLES / "refs/ball.png")))
    mask = np.asarray(make_refs.mask_of(make_refs.teapot()))
    assert np.array_equal(mask, np.asarray(Image.open(EXAMPLES / "refs/teapot_mask.png")))
