"""Bad inputs through `ctxgen validate` and `ctxgen layout` (R1, R2, R8): exit code, golden message, no partial file.

The cases live in tests/golden/bad_inputs.yaml (shared with the render tier in tests/model); each names the files
it needs by a maker below. Accepted inputs (16-bit, CMYK, palette, LA, grey, EXIF-rotated) must also come out with
the right colours in layout.png.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from ctxgen.cli import app
from tests.faults import fail_writes

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "bad_inputs.yaml"
CASES = yaml.safe_load(GOLDEN.read_text(encoding="utf-8"))
W, H = 64, 48


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(w: int, h: int, depth: int = 8, colour: int = 2, rows: bytes | None = None) -> bytes:
    """A PNG written by hand: IHDR, then IDAT from `rows` (filter bytes included), or no pixel data at all."""
    head = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))
    if rows is None:
        return head
    return head + _png_chunk(b"IDAT", zlib.compress(rows)) + _png_chunk(b"IEND", b"")


def _image(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _rgb16() -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one): every pixel 0xC8FF, 0x1000, 0x20FF."""
    row = b"\0" + struct.pack(">HHH", 0xC8FF, 0x1000, 0x20FF) * W
    return png_bytes(W, H, depth=16, colour=2, rows=row * H)


def _palette(transparent: bool) -> bytes:
    im = Image.new("P", (W, H), 0)
    im.putpalette([255, 0, 0, 0, 200, 0] + [0] * 762)
    im.paste(1, (4, 4, W - 4, H - 4))
    return _image(im, transparency=0) if transparent else _image(im)


def _la() -> bytes:
    la = np.full((H, W, 2), 10, np.uint8)  # (h, w, 2): dark and nearly transparent, grey 77 and opaque inside
    la[4:-4, 4:-4] = (77, 255)
    return _image(Image.fromarray(la, "LA"))


def _exif_rotated() -> bytes:
    """Stored 48x64 with the left half red and the right half blue; orientation 6 shows it 64x48, red on top."""
    im = Image.new("RGB", (H, W), (255, 0, 0))
    im.paste((0, 0, 255), (H // 2, 0, H, W))
    exif = Image.Exif()
    exif[0x0112] = 6
    return _image(im, "JPEG", exif=exif, quality=95)


def cutout() -> Image.Image:
    """A 64x48 RGBA cut-out: an opaque red rectangle on a transparent background."""
    rgba = np.zeros((H, W, 4), np.uint8)  # (h, w, 4)
    rgba[8:-8, 8:-8] = (220, 40, 30, 255)
    return Image.fromarray(rgba, "RGBA")


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


BYTES: dict[str, Callable[[], bytes]] = {
    "cut": lambda: _image(cutout()),
    "photo": lambda: _image(cutout().convert("RGB")),
    "white": lambda: _image(Image.new("L", (W, H), 255)),
    "clear": lambda: _image(Image.new("RGBA", (W, H), (255, 255, 255, 0))),
    "mask-small": lambda: _image(Image.new("L", (32, 32), 255)),
    "mask-dim": lambda: _image(Image.new("L", (W, H), 100)),
    "truncated-png": lambda: _half(_image(cutout())),
    "truncated-jpeg": lambda: _half(_image(cutout().convert("RGB"), "JPEG", quality=95)),
    "zero-pixels": lambda: png_bytes(0, H) + b"\0" * 32,
    "empty": lambda: b"",
    "text": lambda: b"this is not an image at all",
    "bomb-81mp": lambda: png_bytes(9000, 9000, rows=b"\0" * 64),  # a few bytes that claim 81 megapixels
    "bomb-900mp": lambda: png_bytes(30000, 30000, rows=b"\0" * 64),
    "grey16": lambda: _image(Image.fromarray(np.full((H, W), 0xC8FF, np.uint16))),
    "rgb16": _rgb16,
    "cmyk-jpeg": lambda: _image(Image.new("CMYK", (W, H), (0, 255, 255, 0)), "JPEG", quality=95),
    "palette": lambda: _palette(False),
    "palette-alpha": lambda: _palette(True),
    "la": _la,
    "grey": lambda: _image(Image.new("L", (W, H), 60)),
    "exif-rotated-jpeg": _exif_rotated,
    "latin1-scene": lambda: b'prompt: "caf\xe9"\ninstances: []\n',
    "huge-scene": lambda: b"prompt: p\n" + b"# padding\n" * 100_001,
}


def make(path: Path, maker: str) -> None:
    """Create `path` from a maker name: a file from BYTES, or a folder, FIFO or regular file placeholder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if maker == "dir":
        path.mkdir()
    elif maker == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(BYTES[maker]())


def build(case: dict, root: Path) -> None:
    """Write the case's scene and files into `root` (refs/cut.png, photo.png and white.png always exist)."""
    for name, maker in {"refs/cut.png": "cut", "refs/photo.png": "photo", "refs/white.png": "white",
                        **case.get("files", {})}.items():
        make(root / name, maker)
    if case.get("scene") is not None:
        (root / "s.yaml").write_text(case["scene"], encoding="utf-8")


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if not p.is_dir()}


def messages(stderr: str, root: Path) -> list[str]:
    """stderr lines with the temp folder written as {tmp}."""
    return [line.replace(str(root), "{tmp}") for line in stderr.splitlines() if line.strip()]


def run_case(case: dict, tier: str, root: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(root)
    monkeypatch.delenv("CTXGEN_MAX_PIXELS", raising=False)
    for key, value in case.get("env", {}).items():
        monkeypatch.setenv(key, value)
    build(case, root)
    before = files_under(root)
    args = [tier, *case.get("args", ["s.yaml"])] + (["--out", "out"] if tier == "layout" else [])
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == case.get("exit", 1), result.stderr
    assert messages(result.stderr, root) == case["expect"]
    new = files_under(root) - before
    if result.exit_code:
        assert new == set(), f"a failed {tier} left files behind: {sorted(map(str, new))}"
    return result, new


def cases_for(tier: str) -> list:
    return [pytest.param(c, id=c["id"]) for c in CASES if tier in c.get("tiers", ["validate", "layout"])]


def test_table_is_large_and_ids_unique() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


@pytest.mark.parametrize("case", cases_for("validate"))
def test_validate(case: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, new = run_case(case, "validate", tmp_path.resolve(), monkeypatch)
    assert new == set()
    assert result.stdout == ("ok s.yaml\n" if result.exit_code == 0 else "")


@pytest.mark.parametrize("case", cases_for("layout"))
def test_layout(case: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path.resolve()
    result, new = run_case(case, "layout", root, monkeypatch)
    if result.exit_code:
        return
    assert new == {Path("out/s/layout.png")}
    layout = np.asarray(Image.open(root / "out/s/layout.png"))  # (H, W, 3)
    for xy, rgb in case.get("pixels", {}).items():
        x, y = map(int, xy.split(","))
        assert np.abs(layout[y, x].astype(int) - rgb).max() <= 3, (xy, layout[y, x], rgb)


ONE = "prompt: p\nsize: [256, 256]\ninstances:\n  - image: refs/cut.png\n    box: [64, 64, 192, 160]\n"


def test_layout_into_a_file_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--out under a regular file (root can write anywhere, so chmod would prove nothing): exit 1, nothing written."""
    monkeypatch.chdir(tmp_path)
    build({"scene": ONE}, tmp_path)
    (tmp_path / "taken").write_text("a file, not a folder")
    before = files_under(tmp_path)
    result = CliRunner().invoke(app, ["layout", "s.yaml", "--out", "taken/out"])
    assert result.exit_code == 1
    assert messages(result.stderr, tmp_path) == [
        "error taken/out/s: cannot write here (Not a directory); choose another folder with --out"]
    assert files_under(tmp_path) == before


def test_layout_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    build({"scene": ONE}, tmp_path)
    before = files_under(tmp_path)
    calls = fail_writes(monkeypatch, lambda path, n: True)
    result = CliRunner().invoke(app, ["layout", "s.yaml", "--out", "out"])
    assert result.exit_code == 1 and calls == [Path("out/s/layout.png")]
    assert messages(result.stderr, tmp_path) == [
        "error out/s/layout.png: write failed (No space left on device); free disk space or choose another --out"]
    assert files_under(tmp_path) == before  # the temp file with the partial bytes is gone too


def test_layout_disk_full_midway_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    build({"scene": ONE}, tmp_path)
    before = files_under(tmp_path)
    fail_writes(monkeypatch, lambda path, n: n > 1)  # layout.png fits, the next file does not
    result = CliRunner().invoke(app, ["layout", "s.yaml", "--out", "out", "--preview", "--dump", "--text-len", "16"])
    assert result.exit_code == 1
    assert files_under(tmp_path) == before


def test_corrupt_exif_is_logged_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A JPEG whose EXIF block is cut short still reads (no orientation to apply); the problem is logged once."""
    from ctxgen.scene.images import read_image

    buf = io.BytesIO()
    Image.new("RGB", (40, 20), (255, 0, 0)).save(buf, "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f")
    (tmp_path / "bad_exif.jpg").write_bytes(buf.getvalue())
    with caplog.at_level("WARNING", logger="ctxgen.scene.images"):
        assert read_image(tmp_path / "bad_exif.jpg").shape == (20, 40, 3)
    (record,) = caplog.records  # Pillow's own wording follows the file name
    assert record.getMessage().startswith("bad_exif.jpg: Corrupt EXIF data.") and "\n" not in record.getMessage()
