"""Scene sources: files, folders, globs, --from lists and stdin, in a stable order without duplicates."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ctxgen.core.errors import UserError
from ctxgen.scene.sources import collect_scenes


@pytest.fixture
def scenes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/a.yaml, tmp/b.yml, tmp/sub/c.yaml, tmp/sub/deep/d.yaml, tmp/notes.txt; cwd = tmp."""
    monkeypatch.chdir(tmp_path)
    for rel in ("a.yaml", "b.yml", "sub/c.yaml", "sub/deep/d.yaml", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("prompt: x\n")
    return tmp_path


def names(paths: list[Path]) -> list[str]:
    return [p.as_posix() for p in paths]


def test_files_keep_the_given_order(scenes):
    assert names(collect_scenes(["b.yml", "a.yaml"])) == ["b.yml", "a.yaml"]


def test_folder_is_searched_recursively_for_yaml_only(scenes):
    assert names(collect_scenes(["sub"])) == ["sub/c.yaml", "sub/deep/d.yaml"]


def test_glob_expands_sorted_and_recursive(scenes):
    assert names(collect_scenes(["*.y*ml"])) == ["a.yaml", "b.yml"]
    assert names(collect_scenes(["**/*.yaml"])) == ["a.yaml", "sub/c.yaml", "sub/deep/d.yaml"]


def test_duplicates_are_dropped_by_resolved_path(scenes):
    got = collect_scenes(["a.yaml", "./a.yaml", str(scenes / "a.yaml"), "*.yaml"])
    assert names(got) == ["a.yaml"]


def test_from_list_skips_blanks_and_comments(scenes):
    (scenes / "list.txt").write_text("# batch 1\nsub/c.yaml\n\n  a.yaml  \nsub/deep\n")
    got = collect_scenes(["b.yml"], from_file="list.txt")
    assert names(got) == ["b.yml", "sub/c.yaml", "a.yaml", "sub/deep/d.yaml"]


def test_from_stdin(scenes, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a.yaml\nsub/c.yaml\n"))
    assert names(collect_scenes([], from_file="-")) == ["a.yaml", "sub/c.yaml"]


def test_missing_plain_file_is_kept_for_the_loader_to_report(scenes):
    assert names(collect_scenes(["a.yaml", "gone.yaml"])) == ["a.yaml", "gone.yaml"]


@pytest.mark.parametrize(
    ("args", "from_file", "message"),
    [
        ([], None, "no scene files given"),
        (["nothing*.yaml"], None, "matches no files"),
        (["empty"], None, "holds no .yaml scene files"),
        ([], "missing-list.txt", "cannot read the scene list"),
        ([], "blank.txt", "no scene files given"),
    ],
)
def test_errors_name_the_input_and_the_fix(scenes, args, from_file, message):
    (scenes / "empty").mkdir()
    (scenes / "blank.txt").write_text("# nothing yet\n\n")
    with pytest.raises(UserError, match=message):
        collect_scenes(args, from_file=from_file)
