"""The prompts stage: a prompt file checked against the D3 rules, and an OpenAI-compatible endpoint (a local
fake server, never the network) with resumable calls."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ctxgen.core.errors import UsageError
from ctxgen.dataset.construct.config import load_config
from ctxgen.dataset.construct.pipeline import run_stage
from ctxgen.dataset.construct.prompts import parse_reply
from tests.construct_helpers import manifest, tiny_config

REPLY = [{"prompt": f"A photorealistic scene showing a man, a woman, a dog and cup {i}",
          "nouns": ["man", "woman", "dog", "cup"]} for i in range(3)] + [{"prompt": "A cat", "nouns": ["cat"]}]


class Fake(BaseHTTPRequestHandler):
    calls: list = []
    fail_first = False

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Fake.calls.append((self.path, self.headers.get("Authorization"), body))
        if Fake.fail_first and len(Fake.calls) == 1:
            self.send_response(500)
            self.end_headers()
            return
        text = "```json\n" + json.dumps(REPLY) + "\n```"
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Fake.calls, Fake.fail_first = [], False
    httpd = HTTPServer(("127.0.0.1", 0), Fake)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1"
    httpd.shutdown()


def llm_config(tmp_path, url):
    extra = (f"\nprompts:\n  source: llm\n  count: 6\n  per_call: 4\n  endpoint: {{base_url: '{url}', "
             "api_key_env: CTXGEN_TEST_KEY, model: fake-chat}\n")
    text = tiny_config(tmp_path).read_text(encoding="utf-8").replace("prompts:\n  source: file\n  file: prompts.json"
                                                                       "          # relative to this file\n", "")
    (tmp_path / "llm.construct").write_text(text + extra, encoding="utf-8")
    return load_config(tmp_path / "llm.construct")


def test_prompt_file_items_and_rule_check(tmp_path):
    cfg = load_config(tiny_config(tmp_path))
    s = run_stage(cfg, tmp_path / "run", "prompts")
    assert (s.inputs, s.kept, dict(s.reasons)) == (3, 2, {"too-few-instances": 1})
    item = json.loads((tmp_path / "run/prompts/000000/item.json").read_text())
    assert item["data"]["nouns"][0] == "woman" and item["kept"]
    again = run_stage(cfg, tmp_path / "run", "prompts")
    assert again.counts["skipped"] == 3 and again.counts["ok"] == 0


def test_llm_calls_are_resumable(tmp_path, server, monkeypatch):
    monkeypatch.setenv("CTXGEN_TEST_KEY", "sk-test")
    Fake.fail_first = True
    cfg = llm_config(tmp_path, server)
    s = run_stage(cfg, tmp_path / "run", "prompts")
    assert s.counts["failed"] == 1 and s.inputs == 2  # call 0 failed (HTTP 500); call 1: entries 4, 5 of 6
    path, auth, body = Fake.calls[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test" and body["model"] == "fake-chat"
    assert "at least 4 main subjects" in body["messages"][1]["content"] and body["temperature"] == 1.0
    s = run_stage(cfg, tmp_path / "run", "prompts")  # only the failed call is asked again
    assert len(Fake.calls) == 3 and s.inputs == 6 and s.kept == 5 and dict(s.reasons) == {"too-few-instances": 1}
    ids = sorted(p.parent.name for p in (tmp_path / "run/prompts").glob("*/item.json"))
    assert ids == ["000000", "000001", "000002", "000003", "000004", "000005"]
    assert [e["status"] for e in manifest(tmp_path / "run", "prompts") if e["item"].startswith("call")] == \
        ["failed", "ok", "ok"]


def test_llm_needs_its_key(tmp_path, server, monkeypatch):
    monkeypatch.delenv("CTXGEN_TEST_KEY", raising=False)
    with pytest.raises(UsageError, match=r"\$CTXGEN_TEST_KEY is not set"):
        run_stage(llm_config(tmp_path, server), tmp_path / "run", "prompts")
    assert Fake.calls == []


def test_parse_reply_variants():
    assert parse_reply('Here: [{"prompt": "a"}, 3]') == [{"prompt": "a"}]
    assert parse_reply('{"prompts": [{"prompt": "b"}]}') == [{"prompt": "b"}]
    with pytest.raises(ValueError):
        parse_reply("no json here")
