"""Stage `prompts`: scene prompts with their noun lists, from a prompt file or an OpenAI-compatible chat endpoint.

The D3 rules are applied (in the request) and checked (on every entry, file or LLM): at least `min_instances`
nouns (>3 basic, >5 complex; 2 subjects with reference prompts on the flexible path), at least `min_humans`
of them human (a word list), each entry with a non-empty prompt. A rejected entry is an item with its reason.
LLM calls are items too (`prompts/calls/`): a re-run asks only for the calls that have not succeeded.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from ctxgen.core.errors import UsageError, UserError
from ctxgen.dataset.construct.config import ConstructConfig
from ctxgen.dataset.construct.filters import prompt_reason
from ctxgen.dataset.construct.store import Item, StageStore, digest

log = logging.getLogger(__name__)
STYLES = (("A photorealistic scene showing", 0.75), ("An anime-style illustration featuring", 0.15),
          ("A watercolor painting depicting", 0.05), ("A neon-lit cyberpunk scene with", 0.05))  # D3 style mix


def read_prompt_file(path: Path) -> list[dict]:
    """A JSON list (or {"prompts": [...]}) or JSONL of entries; one error line naming the file otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the prompt file ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise UserError(f"{path}: neither JSON nor JSON lines ({exc}); see docs/construct.md") from None
    if isinstance(data, dict):
        data = data.get("prompts")
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise UserError(f"{path}: expected a list of {{prompt, nouns}} (or {{prompt, instance, instance_prompt}}) "
                        "objects")
    return data


def request_text(cfg: ConstructConfig, n: int, style: str) -> str:
    """The chat request of one call, built from the rules as data (ctxgen's own wording)."""
    nouns, humans = cfg.rule()
    if cfg.path == "flexible":
        return (f"Write {n} short scene descriptions as a JSON array. Each element has \"prompt\" (two common subjects "
                "in a simple interaction that makes them touch or overlap), \"instance\" (exactly two singular nouns, "
                "one per subject) and \"instance_prompt\" (two detailed noun phrases describing the subjects as in "
                "the prompt, specific enough to draw each subject alone). Avoid scenery words such as sky, ground, "
                "street or forest. Output only the JSON array.")
    return (f"Write {n} scene descriptions as a JSON array of objects with \"prompt\" and \"nouns\". Start every "
            f"prompt with \"{style}\". Each scene has at least {nouns} main subjects with clear visual features, at "
            f"least {humans} of them human, each large enough to recognise and told apart by clothing, accessories "
            "or markings; describe the background briefly without letting it dominate. \"nouns\" lists the "
            "subjects a detector can find: no background regions (sky, ground, water), nothing invisible (light, "
            "shadow, wind) and no part of another subject (a person's glasses). Output only the JSON array.")


def parse_reply(text: str) -> list[dict]:
    """The JSON array in a chat reply (code fences allowed); entries that are not objects are dropped."""
    body = re.sub(r"^```[a-zA-Z]*\s*|\s*```\s*$", "", text.strip())
    start, end = body.find("["), body.rfind("]")
    data = json.loads(body[start:end + 1] if start >= 0 and end > start else body)
    if isinstance(data, dict):
        data = data.get("prompts", [data])
    if not isinstance(data, list):
        raise ValueError("the reply is not a JSON array")
    return [e for e in data if isinstance(e, dict)]


def chat(cfg: ConstructConfig, text: str) -> str:
    """One chat completion from the configured OpenAI-compatible endpoint (httpx); the key from its env var."""
    import httpx

    ep = cfg.prompts.endpoint
    key = os.environ.get(ep.api_key_env, "")
    if not key:
        raise UsageError(f"prompts.endpoint.api_key_env: ${ep.api_key_env} is not set; export your API key there")
    body = {"model": ep.model, "temperature": ep.temperature, "stream": False,
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": text}]}
    reply = httpx.post(ep.base_url.rstrip("/") + "/chat/completions", json=body, timeout=ep.timeout_s,
                       headers={"Authorization": f"Bearer {key}"})
    reply.raise_for_status()
    return reply.json()["choices"][0]["message"]["content"]


def _check(cfg: ConstructConfig, entry: dict) -> str | None:
    if not cfg.prompts.check:
        return None
    nouns, humans = cfg.rule()
    return prompt_reason(entry, nouns, humans, cfg.prompts.human_words, flexible=cfg.path == "flexible")


def _entry_item(cfg: ConstructConfig, index: int, entry: dict) -> Item:
    reason = _check(cfg, entry)
    keys = ("prompt", "instance", "instance_prompt") if cfg.path == "flexible" else ("prompt", "nouns")
    data = {"index": index, **{k: entry.get(k) for k in keys}}
    return Item(f"{index:06d}", data, kept=reason is None, reason=reason)


def file_entries(cfg: ConstructConfig) -> list[tuple[int, dict]]:
    entries = read_prompt_file(cfg.resolve(cfg.prompts.file))
    out, seen = [], set()
    for pos, entry in enumerate(entries):
        index = entry.get("index", pos)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0 or index in seen:
            index = pos if pos not in seen else max(seen) + 1
        seen.add(index)
        out.append((index, entry))
    return out


def llm_entries(cfg: ConstructConfig, store: StageStore, log_entry: Callable[[dict], None]) -> list[tuple[int, dict]]:
    """Ask for the calls not yet answered (each reply kept in `prompts/calls/`); entries indexed call-major."""
    import numpy as np

    p = cfg.prompts
    calls = -(-p.count // p.per_call)
    folder = store.folder / "calls"
    folder.mkdir(parents=True, exist_ok=True)
    request = {k: v for k, v in cfg.section("prompts").items() if k not in ("file", "count")}
    out = []
    for c in range(calls):
        path = folder / f"{c:05d}.json"
        rng = np.random.Generator(np.random.PCG64([cfg.seed, c]))
        style = STYLES[int(rng.choice(len(STYLES), p=[w for _, w in STYLES]))][0]
        key = digest([cfg.path, request, cfg.rule(), style, c])
        done = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if done is None or done.get("key") != key:
            try:
                reply = parse_reply(chat(cfg, request_text(cfg, p.per_call, style)))
            except UsageError:
                raise
            except Exception as exc:  # network, HTTP or JSON: this call fails, the others go on
                log_entry({"item": f"call-{c:05d}", "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
                continue
            from ctxgen.core.fsio import write_json

            done = {"key": key, "entries": reply}
            write_json(path, done)
            log_entry({"item": f"call-{c:05d}", "status": "ok", "entries": len(reply)})
        out += [(c * p.per_call + j, e) for j, e in enumerate(done["entries"][:p.per_call])
                if c * p.per_call + j < p.count]
    return out


def items(cfg: ConstructConfig, store: StageStore, log_entry: Callable[[dict], None]) -> list[tuple[Item, str]]:
    """Every prompt item with its key (the entry and the rules it was checked against)."""
    entries = file_entries(cfg) if cfg.prompts.source == "file" else llm_entries(cfg, store, log_entry)
    rules = [cfg.path, cfg.rule(), cfg.prompts.check, sorted(cfg.prompts.human_words)]
    return [(_entry_item(cfg, index, entry), digest(["prompts", rules, entry])) for index, entry in entries]
