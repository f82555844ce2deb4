"""A training session: the run folder, a fresh start or an exact resume, and everything the loop reads (T3).

    RUN/config.yaml        the config as given          RUN/log.jsonl       one line per logged step
    RUN/run.json           method, trajectory, world     RUN/previews/       preview renders
    RUN/checkpoints/       safetensors + state.json      RUN/adapter/        what `ctxgen render --adapter` loads
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ctxgen.core.errors import UsageError
from ctxgen.core.fsio import write_bytes, write_json
from ctxgen.train import checkpoint as ckpt
from ctxgen.train import lora
from ctxgen.train.config import TrainConfig
from ctxgen.train.data import ExampleSource, read_column
from ctxgen.train.examples import ExampleOptions
from ctxgen.train.optim import load_optimizer_state, optimizer_state
from ctxgen.train.preview import Previewer
from ctxgen.train.setup import Run, named_params, prepare_run
from ctxgen.train.step import LatentCache
from ctxgen.train.text_cache import TextEncoder

log = logging.getLogger(__name__)


@dataclass
class Session:
    """A prepared run: model and optimizer (restored on resume), data, text encoder, previews, where it writes."""

    cfg: TrainConfig
    run: Run
    run_dir: Path
    source: ExampleSource
    options: ExampleOptions
    text: TextEncoder
    previewer: Previewer | None
    start_step: int
    resumed: bool
    max_steps: int
    latents: LatentCache

    def adapter_file(self, step: int) -> Path:
        return ckpt.adapter_path(self.run_dir, self.cfg.method, step)

    def adapter_parts(self) -> dict:
        """The adapter render loads: the policy (SFT), or the SFT adapter plus the policy as one LoRA (DPO, T4)."""
        parts = lora.policy_parts(self.run.model.transformer)
        return lora.combined(self.run.init_parts, parts) if self.cfg.method == "dpo" else parts

    def save(self, step: int) -> Path:
        """RUN/adapter/contextgen_<method>_<step>.safetensors, then the checkpoint (main process)."""
        doc = self.cfg.doc
        dtype = torch.bfloat16 if doc.checkpoint.adapter_dtype == "bfloat16" else torch.float32
        alpha = self.cfg.alpha if self.cfg.method == "sft" else None
        lora.write_adapter(self.adapter_file(step), self.adapter_parts(), alpha, doc.lora.init, dtype)
        tensors, scalars = optimizer_state(self.run.optimizer.optimizer)
        state = {"method": self.cfg.method, "next_sample": step * doc.train.batch,
                 "cursor": json.loads(self.source.cursor(step * doc.train.batch).to_json()),
                 "world": self.run.world, "optimizer": scalars, "trajectory": self.cfg.trajectory(),
                 "init_adapter_sha256": self.run.model.adapter_sha256,
                 "adapter_file": str(self.adapter_file(step).relative_to(self.run_dir))}
        params = {n: p.detach() for n, p in named_params(self.run).items()}
        return ckpt.save(self.run_dir, step, params, tensors, state, doc.checkpoint.keep)


def run_folder(cfg: TrainConfig, output: Path | None) -> Path:
    """--output, else the config's `output:`; one of them is needed."""
    folder = output or cfg.output
    if folder is None:
        raise UsageError(f"{cfg.source}: no run folder; pass --output DIR or set `output:` in the config")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--output {folder} is a file; give a folder for the run")
    return folder


def pick_checkpoint(run_dir: Path, resume: str | None) -> Path | None:
    """The checkpoint to start from; an existing run without --resume is refused (nothing is overwritten)."""
    if resume is None:
        steps = ckpt.complete_steps(run_dir)
        if steps:
            raise UsageError(f"{run_dir} holds a run at step {steps[-1]}; pass --resume auto to continue it, "
                             "or give another --output")
        return None
    return ckpt.find(run_dir, resume)


def _differs(saved: dict, now: dict, path: str = "") -> str | None:
    """The first setting (dotted path) that differs between two trajectories."""
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        where = f"{path}.{key}" if path else key
        if isinstance(a, dict) and isinstance(b, dict):
            found = _differs(a, b, where)
            if found:
                return found
        elif a != b:
            return f"{where} ({json.dumps(a)} then, {json.dumps(b)} now)"
    return None


def restore(run: Run, cfg: TrainConfig, folder: Path) -> int:
    """Put a checkpoint's LoRA weights and optimizer state back; returns its step."""
    point = ckpt.load(folder)
    if point.state.get("method") != cfg.method:
        raise UsageError(f"--resume {folder}: a {point.state.get('method')} checkpoint; this is `train {cfg.method}`")
    diff = _differs(point.state.get("trajectory", {}), cfg.trajectory())
    if diff:
        raise UsageError(f"--resume {folder}: the config changed what is trained: {diff}; restore it or use another "
                         "--output")
    if point.state.get("init_adapter_sha256") != run.model.adapter_sha256:
        raise UsageError(f"--resume {folder}: model.init_adapter's file changed since this run started (sha256 "
                         "differs); restore it or use another --output")
    named = named_params(run)
    if set(named) != set(point.params):
        raise UsageError(f"--resume {folder}: its LoRA parameters do not match this model's")
    with torch.no_grad():
        for name, p in named.items():
            p.copy_(point.params[name].to(p.device))
    load_optimizer_state(run.optimizer.optimizer, point.optimizer_tensors, point.state["optimizer"])
    return point.step


def _fill_cache(text: TextEncoder, session_prompts: list[str], source: ExampleSource, run: Run, events) -> None:
    """With a cache folder: every prompt (captions, the empty caption, previews) encoded once, then the text
    encoders leave memory (main process fills, the others wait)."""
    from ctxgen.sequence.prompt import wrap_prompt

    if text.folder is None:
        return
    if run.is_main:
        texts = {wrap_prompt(p) for p in read_column(source.reader, "prompt")} | {wrap_prompt("")}
        done = text.fill(texts | set(session_prompts), None if events is None else events.cache)
        log.info("text cache %s: %d prompts encoded", text.folder, done)
    run.accelerator.wait_for_everyone()
    text.unload_encoders()


def open_session(cfg: TrainConfig, output: Path | None = None, resume: str | None = None,
                 max_steps: int | None = None, events=None) -> Session:
    """Check the run folder, load everything, restore a checkpoint when resuming; RUN/config.yaml is written last."""
    run_dir = run_folder(cfg, output)
    point = pick_checkpoint(run_dir, resume)
    run = prepare_run(cfg)
    data = cfg.doc.data
    source = ExampleSource(cfg.shards, cfg.doc.seed, data.mix)
    options = ExampleOptions(tuple(data.canvas), data.reference_area, data.text_len, data.box_scale, data.ica)
    text = TextEncoder(run.model, data.text_len, cfg.text_cache)
    previewer = Previewer(run.model, text, cfg.preview_scenes, cfg.doc.preview, cfg.doc.train.attention)
    _fill_cache(text, previewer.prompts(), source, run, events)
    start = restore(run, cfg, point) if point is not None else 0
    if run.is_main:  # written once everything loaded and matched: a refused resume changes nothing
        write_bytes(run_dir / "config.yaml", cfg.source.read_bytes())
        write_json(run_dir / "run.json", {"method": cfg.method, "config": str(cfg.source), "world": run.world,
                                          "trajectory": cfg.trajectory()})
    steps = max_steps or cfg.doc.train.max_steps
    latents = LatentCache(cfg.doc.train.latent_cache_mb << 20)
    return Session(cfg, run, run_dir, source, options, text, previewer, start, point is not None, steps, latents)
