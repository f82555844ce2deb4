"""Safety: output folders derived from scene names stay inside --out; no code path can unpickle or run remote code."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from ctxgen.cli import app
from ctxgen.outputs.files import scene_out_dirs

PACKAGE = Path(__file__).resolve().parents[2] / "ctxgen"

# ---- output paths ----

names = st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=12)
folders = st.sampled_from(["", "..", "../..", "/", "/etc", "a/../..", "./x/.."])


def inside(root: Path, out: Path) -> bool:
    return out.parent == root and out.name not in ("", ".", "..") and os.sep not in out.name


@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.tuples(folders, names | st.sampled_from([".", "..", "...", ". .", "~", "-"])),
                      min_size=1, max_size=6))
def test_scene_folders_never_leave_out(items: list[tuple[str, str]]) -> None:
    root = Path("/srv/out")
    paths = [Path(folder) / f"{stem}.yaml" for folder, stem in items]
    dirs = scene_out_dirs(paths, root)
    assert set(dirs) == set(paths) and all(inside(root, out) for out in dirs.values())
    assert all(not out.name.startswith(".") for out in dirs.values())  # never hidden, never `..`


def test_scene_folders_are_distinct() -> None:
    paths = [Path("x/a b.yaml"), Path("y/a_b.yaml"), Path("..yaml"), Path("scene.yaml")]
    dirs = scene_out_dirs(paths, Path("out"))
    assert len(set(dirs.values())) == len(paths), dirs


def test_layout_writes_only_under_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scenes given as `../x.yaml`, named `..yaml`, with labels like `../../evil`: every file lands in OUT/<name>/."""
    work = tmp_path / "work"
    (work / "refs").mkdir(parents=True)
    (tmp_path / "refs").mkdir()
    cut = Image.new("RGBA", (32, 32), (200, 30, 30, 255))
    cut.save(tmp_path / "refs" / "cut.png")
    scene = ("prompt: p\nsize: [256, 256]\ninstances:\n  - image: refs/cut.png\n    box: [10, 10, 100, 100]\n"
             "    label: {label}\n    phrase: /etc/passwd\n")
    for name, label in (("up.yaml", "../../evil"), ("..yaml", "/abs/path"), ("...yaml", "..")):
        (tmp_path / name).write_text(scene.format(label=label))
    monkeypatch.chdir(work)
    before = {p for p in tmp_path.rglob("*")}
    result = CliRunner().invoke(app, ["layout", "../up.yaml", "../..yaml", "../...yaml", "--out", "out",
                                      "--preview", "--dump", "--text-len", "16"])
    assert result.exit_code == 0, result.stderr
    created = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    out = (work / "out").resolve()
    assert created and all(p.resolve().is_relative_to(out) for p in created)
    names = {p.parent.name for p in created}
    assert len(names) == 3 and "up" in names and all(n == "up" or n.startswith("scene-") for n in names)


# ---- nothing is unpickled, nothing runs remote code ----

def _kwarg(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


UNSAFE_MODULES = ("pickle", "cPickle", "_pickle", "dill", "joblib", "marshal", "shelve", "cloudpickle")


def unsafe_uses(source: str) -> list[str]:
    """Every call or import in `source` that could unpickle data or run downloaded code, as `line: reason`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{node.lineno}: imports {m}" for m in mods if m.split(".")[0] in UNSAFE_MODULES]
            if isinstance(node, ast.ImportFrom) and node.module == "torch" and "load" in [a.name for a in node.names]:
                found.append(f"{node.lineno}: imports torch.load under another name")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name.endswith("torch.load") and _kwarg(node, "weights_only") is not True:
            found.append(f"{node.lineno}: {name}() without weights_only=True")
        if name.split(".")[0] in UNSAFE_MODULES:
            found.append(f"{node.lineno}: calls {name}()")
        if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"):
            found.append(f"{node.lineno}: {name}() (use yaml.safe_load or yaml.compose with SafeLoader)")
        for key, bad in (("use_safetensors", False), ("allow_pickle", True), ("trust_remote_code", True),
                         ("weights_only", False)):
            if _kwarg(node, key) == bad:
                found.append(f"{node.lineno}: {name}({key}={bad})")
    return found


def test_scanner_catches_each_pattern() -> None:
    bad = ("import pickle\nfrom torch import load\ntorch.load(f)\ntorch.load(f, weights_only=False)\n"
           "pickle.loads(b)\nyaml.load(t, Loader=yaml.Loader)\nX.from_pretrained(p, use_safetensors=False)\n"
           "np.load(p, allow_pickle=True)\nAutoModel.from_pretrained(p, trust_remote_code=True)\n")
    assert [line.split(":")[0] for line in unsafe_uses(bad)] == [str(i) for i in (1, 2, 3, 4, 4, 5, 6, 7, 8, 9)]
    assert unsafe_uses("torch.load(f, weights_only=True)\nyaml.safe_load(t)\nnp.load(p)\n") == []


def test_no_unpickling_anywhere_in_the_package() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    problems = [f"{p.relative_to(PACKAGE.parent)}:{u}" for p in files for u in unsafe_uses(p.read_text("utf-8"))]
    assert problems == []
