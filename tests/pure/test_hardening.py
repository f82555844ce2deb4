"""Issue 11's defects that need no model: output folders, globs, scene lists, compare's opener, PNG metadata,
permissions, temp-file ownership and numeric options. Each test failed before its fix."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.core import fsio
from ctxgen.core.errors import UsageError, UserError
from ctxgen.outputs.compare import compare_images
from ctxgen.outputs.files import scene_out_dirs
from ctxgen.outputs.metadata import read_metadata
from ctxgen.outputs.metadata_schema import parse_render_metadata
from ctxgen.scene.sources import collect_scenes

runner = CliRunner()


# -- 7: output folders are unique across the batch and settle ------------------------------------------------
def test_a_file_named_like_a_hashed_folder_gets_its_own_folder(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a, b = tmp_path / "x/s.yaml", tmp_path / "y/s.yaml"
    c = tmp_path / f"s-{hashlib.sha256(str(a.resolve()).encode()).hexdigest()[:6]}.yaml"
    dirs = scene_out_dirs([a, b, c], tmp_path / "out")
    assert len(set(dirs.values())) == 3
    assert scene_out_dirs([c, b, a], tmp_path / "out") == dirs  # the same set gives the same folders


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c/d"]), st.sampled_from(["s", "s-1", "..", ".h", "s s"])),
                min_size=1, max_size=8))
def test_folder_names_are_unique_and_stay_inside_out(tmp_path_factory, files) -> None:
    root = tmp_path_factory.mktemp("scenes")
    paths = [root / folder / f"{stem}.yaml" for folder, stem in files]
    dirs = scene_out_dirs(paths, root / "out")
    by_file = {}
    for p, d in dirs.items():
        by_file.setdefault(d, set()).add(str(p.resolve()))
        assert d.parent == root / "out" and not d.name.startswith(".")
    assert all(len(files_) == 1 for files_ in by_file.values())


# -- 13: globs and folders do not follow folder links ---------------------------------------------------------
def test_symlink_loops_are_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("prompt: p\n")
    (tmp_path / "sub/b.yaml").write_text("prompt: p\n")
    (tmp_path / "l1").symlink_to(".")
    (tmp_path / "sub/up").symlink_to("..")
    expected = [Path("a.yaml"), Path("sub/b.yaml")]
    assert collect_scenes(["**/*.yaml"]) == expected
    assert collect_scenes(["."]) == expected


# -- 14: --from lists -----------------------------------------------------------------------------------------
def test_scene_lists_bom_bad_bytes_and_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text("prompt: p\n")
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfa.yaml\n")
    assert collect_scenes([], "bom.txt") == [Path("a.yaml")]
    (tmp_path / "latin.txt").write_bytes(b"a.yaml\ncaf\xe9.yaml\n")
    with pytest.raises(UsageError, match=r"latin.txt:2: not valid UTF-8 \(byte 0xe9\)"):
        collect_scenes([], "latin.txt")
    with pytest.raises(UsageError, match="larger than 1 MiB"):
        monkeypatch.setattr("ctxgen.scene.sources.MAX_LIST_BYTES", 1 << 20)
        collect_scenes([], "/dev/zero")


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300))
def test_any_list_bytes_give_paths_or_one_usage_error(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("lists") / "list.txt"
    path.write_bytes(data)
    try:
        collect_scenes([], str(path))
    except UsageError as exc:
        assert "\n" not in str(exc)


# -- 15: compare uses the safe image opener -----------------------------------------------------------------
def test_compare_refuses_fifos_bombs_and_other_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "a.png"
    Image.new("RGB", (16, 16), (1, 2, 3)).save(good)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="not a regular file"):
        compare_images(good, fifo)  # opening a FIFO would block
    monkeypatch.setenv("CTXGEN_MAX_PIXELS", "100")
    with pytest.raises(UserError, match="above the limit of 100"):
        compare_images(good, good)
    monkeypatch.delenv("CTXGEN_MAX_PIXELS")
    eps = tmp_path / "x.eps"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    with pytest.raises(UserError, match="not a readable image"):
        compare_images(good, eps)  # never handed to Ghostscript


# -- 16 and 5: PNG metadata is untrusted input --------------------------------------------------------------
def _png_with_text(path: Path, text: str) -> Path:
    info = PngInfo()
    info.add_text("ctxgen", text)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


@pytest.mark.parametrize("text", ["[1, 2]", "123", "\"x\"", "{bad json", "null"])
def test_odd_metadata_reads_as_absent(tmp_path: Path, text: str) -> None:
    assert read_metadata(_png_with_text(tmp_path / "seed-1.png", text)) is None


def valid_metadata() -> dict:
    return {"key": "a" * 64, "seed": 7, "scene_file": "/tmp/s.yaml", "scene_sha256": "b" * 64, "scene_yaml": "prompt: p\n",
            "files": {"/tmp/r.png": "c" * 64},
            "settings": {"steps": 2, "guidance": 3.5, "text_len": 16, "base": "tiny", "adapter": None,
                         "adapter_sha256": None, "fused": False, "dtype": "float32", "device": "cpu",
                         "memory": "full", "attention": "sdpa"}}


@pytest.mark.parametrize(("change", "field"), [
    (lambda m: m.pop("settings"), "settings"), (lambda m: m.update(seed=2**70), "seed"),
    (lambda m: m["settings"].update(text_len=0), "settings.text_len"), (lambda m: m.update(seed="7"), "seed"),
    (lambda m: m["settings"].update(attention="xformers"), "settings.attention"),
    (lambda m: m.update(files=[1, 2]), "files"), (lambda m: m["settings"].update(steps=True), "settings.steps"),
])
def test_edited_metadata_is_one_line_naming_the_field(change, field) -> None:
    meta = valid_metadata()
    change(meta)
    with pytest.raises(UserError, match=rf"^x.png: metadata field {field}: .*edited or not written by") as info:
        parse_render_metadata(meta, Path("x.png"))
    assert "\n" not in str(info.value)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                     max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["key", "seed", "scene_file", "scene_sha256", "scene_yaml", "files", "settings", "steps",
                        "guidance", "text_len", "base", "fused", "dtype", "memory", "attention"]), _json)
def test_fuzzed_metadata_validates_or_raises_one_user_error(field: str, value) -> None:
    meta = valid_metadata()
    (meta["settings"] if field in meta["settings"] else meta)[field] = value
    try:
        parse_render_metadata(meta, Path("x.png"))
    except UserError as exc:
        assert "\n" not in str(exc)


# -- 9 and 2: output permissions follow the umask; temp files of live writers are left alone ----------------
def test_outputs_respect_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        fsio._umask = None  # read it again
        path = fsio.write_bytes(tmp_path / "f.png", b"x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    finally:
        os.umask(old)
        fsio._umask = None


def test_only_temp_files_of_gone_writers_are_cleaned(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        host = fsio.part_prefix(Path("x")).split(".")[2].rsplit("-", 1)[0]
        mine = tmp_path / f".seed-1.png.{host}-{live.pid}.abcd1234.part"
        stale = tmp_path / f".seed-2.png.{host}-{int(dead.stdout)}.abcd1234.part"
        other_host = tmp_path / f".seed-3.png.elsewhere-{int(dead.stdout)}.abcd1234.part"
        for p in (mine, stale, other_host):
            p.write_bytes(b"half")
        assert fsio.clean_stale_parts(tmp_path) == 1
        assert mine.exists() and not stale.exists() and other_host.exists()
    finally:
        live.kill()
        live.wait()


# -- 10 and 11: numeric options and environment settings -----------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--guidance", "inf"], "error --guidance: must be a finite number >= 0, got inf"),
    (["--guidance", "nan"], "error --guidance: Input should be greater than or equal to 0; see 'ctxgen render --help'"),
    (["--seed", "-1"], "error --seed: must be 0..2^64-1 (18446744073709551615), got -1"),
    (["--seed", str(2**64)], f"error --seed: must be 0..2^64-1 (18446744073709551615), got {2**64}"),
    (["--device", "meta"], "error --device: 'meta' is not a device ctxgen runs on; use auto, cpu, cuda, cuda:N or mps"),
])
def test_bad_numbers_and_devices_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    scene = Path(__file__).resolve().parents[2] / "examples" / "small.yaml"
    res = runner.invoke(app, ["render", str(scene), "--model", "tiny", "--out", str(tmp_path), *args])
    assert res.exit_code == 2 and res.stderr.strip() == message
    assert not any(tmp_path.iterdir())


def test_usage_errors_are_one_line_with_a_help_hint() -> None:
    res = runner.invoke(app, ["render", "--steps", "0", "x.yaml"])
    assert res.exit_code == 2
    assert res.stderr.splitlines() == [
        "error --steps: Input should be greater than or equal to 1; see 'ctxgen render --help'"]
    res = runner.invoke(app, ["render", "--bogus"])
    assert res.exit_code == 2 and len(res.stderr.splitlines()) == 1 and "No such option: --bogus" in res.stderr


def test_a_huge_pixel_cap_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXGEN_MAX_PIXELS", "9" * 5000)
    png = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(png)
    res = runner.invoke(app, ["compare", str(png), str(png)])
    assert res.exit_code == 1
    assert res.stderr.splitlines() == ["error CTXGEN_MAX_PIXELS must be a positive integer number of pixels, "
                                       "got '99999999999999999...'"]


def test_metadata_written_never_holds_infinity(tmp_path: Path) -> None:
    from ctxgen.outputs.metadata import encode_sidecar

    with pytest.raises(ValueError):
        encode_sidecar({"guidance": float("inf")})
    assert json.loads(encode_sidecar({"guidance": 3.5})) == {"guidance": 3.5}
    assert np.isfinite(3.5)
