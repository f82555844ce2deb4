"""Issue 12: the README's promises hold for a newcomer (missing weights, help text, install hints)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctxgen.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_missing_weights_are_one_message_with_a_record_per_scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The default preset without weights: base and adapter named together, how to get them, and still a summary,
    a JSON object and a failed manifest line per scene (nothing is loaded, nothing downloaded)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    for name in ("CTXGEN_BASE", "CTXGEN_ADAPTER"):
        monkeypatch.delenv(name, raising=False)
    scenes = [str(ROOT / "examples" / "park.yaml"), str(ROOT / "examples" / "small.yaml")]
    res = runner.invoke(app, ["render", *scenes, "--out", str(tmp_path / "out"), "--json",
                              "--manifest", str(tmp_path / "m.jsonl")])
    assert res.exit_code == 1
    lines = res.stderr.splitlines()
    assert lines[-1] == "0 rendered, 0 skipped, 2 failed" and len(lines) == 2
    message = lines[0]
    assert message.startswith("error model weights are not available: base 'black-forest-labs/FLUX.1-Kontext-dev' "
                              "is not in the Hugging Face cache (HF_HUB_OFFLINE is set); adapter "
                              "'ruihangxu/ContextGen' is not in the Hugging Face cache")
    for part in ("`hf download black-forest-labs/FLUX.1-Kontext-dev`", "`hf download ruihangxu/ContextGen`",
                 "accept the licence at https://huggingface.co/black-forest-labs/FLUX.1-Kontext-dev",
                 "--base PATH / --adapter PATH"):
        assert part in message
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d["ok"] for d in docs] == [False, False]
    recs = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [r["status"] for r in recs] == ["failed", "failed"] and recs[0]["error"] == message.removeprefix("error ")
    assert not (tmp_path / "out").exists()


def help_text(*args: str) -> str:
    res = runner.invoke(app, [*args, "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert res.exit_code == 0
    return res.stdout


def test_render_help_is_grouped_and_readable_at_80_columns():
    text = help_text("render")
    for panel in ("Scenes and outputs", "Model", "Sampling", "Batch", "Speed and memory"):
        assert f"─ {panel} " in text
    assert "<bool>" not in text and "<str>" not in text and "[[SCENE" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "Usage: ctxgen render [OPTIONS] [SCENE]..." in text


def test_global_flags_take_no_value_and_json_help_says_what_it_prints():
    text = help_text()
    assert re.search(r"--verbose\s+-v\s+More log output", text) and "<int>" not in text
    assert "per scene" not in help_text("doctor") and "per scene" not in help_text("compare")


def test_install_hints_work_from_a_checkout():
    """ctxgen is not on the package index: every hint is `pip install -e ".[extra]"` (in a checkout)."""
    offenders = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in sorted((ROOT / "ctxgen").rglob("*.py"))
                 for line in p.read_text(encoding="utf-8").splitlines() if re.search(r"ctxgen\[[a-z-]+\]", line)]
    readme = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
              if re.search(r"pip install [\"']?ctxgen\[", line)]
    assert offenders == [] and readme == []
