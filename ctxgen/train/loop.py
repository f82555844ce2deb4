"""The training loop (T2-T4, R22-R23): batch, forward, loss, backward, step, log, checkpoint, preview.

One optimizer step = `batch` examples over all processes, one example per micro-batch; example `index` of step
`step` is sample number step·batch + index of the data order (`data.py`), drawn with keyed randomness
(`randomness.py`). Ctrl-C or SIGTERM saves a checkpoint of the last finished step and ends with exit 130; an
optimizer step is never cut in half (a signal during it is acted on once the step is done and logged).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ctxgen.train.examples import build_example
from ctxgen.train.log import RunLog
from ctxgen.train.optim import lr_at
from ctxgen.train.prefetch import Prefetcher
from ctxgen.train.randomness import draw_choices
from ctxgen.train.session import Session, open_session
from ctxgen.train.step import dpo_step, encode, sft_step

log = logging.getLogger(__name__)


@dataclass
class StepStats:
    """What one optimizer step did (logged, shown in the progress bar)."""

    step: int
    max_steps: int
    loss: float
    lr: float
    grad_norm: float | None
    step_s: float
    data_s: float  # reading, decoding, layout and masks (torch-free)
    encode_s: float  # VAE and text encoders
    extra: dict = field(default_factory=dict)


@dataclass
class Summary:
    """How a run ended."""

    run_dir: Path
    start_step: int
    step: int
    adapter: Path | None
    checkpoint: Path | None


class Events:
    """Callbacks the command line implements (progress bar, messages); the defaults do nothing."""

    def start(self, session: Session) -> None: ...
    def step(self, stats: StepStats) -> None: ...
    def saved(self, step: int, folder: Path) -> None: ...
    def previews(self, step: int, paths: list[Path]) -> None: ...
    def cache(self, done: int, total: int) -> None: ...


@contextmanager
def interrupts_deferred() -> Iterator[list[int]]:
    """Ctrl-C / SIGTERM inside the block are recorded in the yielded list instead of raised (main thread)."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    old = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class Trainer:
    """`ctxgen train sft|dpo`: a session (model, data, state) and the loop over its steps."""

    def __init__(self, session: Session, events: Events | None = None):
        self.s = session
        self.events = events or Events()
        self.step = session.start_step
        self.saved_step = session.start_step if session.resumed else -1
        self.interrupted = False
        mode, device = session.cfg.doc.train.prefetch, session.run.accelerator.device
        self.prefetch = Prefetcher(self.prepare, mode == "on" or (mode == "auto" and device.type != "cpu"))

    def prepare(self, step: int, index: int):
        """Example `index` of `step`, ready for the model: (Encoded, data seconds, encode seconds)."""
        s = self.s
        t0 = time.perf_counter()
        rec = s.source.record(step * s.cfg.doc.train.batch + index)
        ex = build_example(rec, draw_choices(rec, s.cfg.doc.data, s.cfg.doc.seed, step, index), s.options)
        t1 = time.perf_counter()
        rejected = s.cfg.doc.dpo.rejected if s.cfg.method == "dpo" else None
        enc = encode(s.run, ex, s.text, s.cfg.doc.train.attention, rejected, s.latents)
        return enc, t1 - t0, time.perf_counter() - t1

    def next_key(self, m: int) -> tuple[int, int]:
        """(step, index) of the micro-batch after micro-batch m of this step, on this process."""
        run = self.s.run
        return (self.step, (m + 1) * run.world + run.rank) if m + 1 < run.accumulation else (self.step + 1, run.rank)

    def micro(self, m: int) -> tuple[torch.Tensor, dict, float, float]:
        """Micro-batch m: (loss, info, data seconds, encode seconds); its backward is the caller's."""
        run = self.s.run
        enc, data_s, enc_s = self.prefetch.get((self.step, m * run.world + run.rank))
        if self.next_key(m)[0] < self.s.max_steps:
            self.prefetch.ahead(self.next_key(m))
        fn = dpo_step if self.s.cfg.method == "dpo" else sft_step
        loss, info = fn(run, enc, self.step, m * run.world + run.rank)
        return loss, info, data_s, enc_s

    def train_step(self) -> StepStats:
        """`accumulation` micro-batches on this process, then one optimizer step (gradients averaged, T3)."""
        run, doc = self.s.run, self.s.cfg.doc
        acc, t0 = run.accelerator, time.perf_counter()
        losses, infos, data_s, enc_s = [], [], 0.0, 0.0
        for m in range(run.accumulation):
            with acc.accumulate(run.forward):
                loss, info, d, e = self.micro(m)
                acc.backward(loss)
            losses.append(loss.detach())
            infos.append(info)
            data_s, enc_s = data_s + d, enc_s + e
        if not acc.sync_gradients:
            raise RuntimeError("gradient accumulation is out of step with the micro-batches")
        lr = lr_at(self.step, doc.optimizer, self.s.max_steps)
        with interrupts_deferred() as caught:
            norm = acc.clip_grad_norm_(run.params, doc.train.grad_clip) if doc.train.grad_clip else None
            for group in run.optimizer.param_groups:
                group["lr"] = lr
            run.optimizer.step()
            run.optimizer.zero_grad(set_to_none=True)
            self.step += 1
        self.interrupted = bool(caught)  # raised once this step is logged (run)
        keys = [k for k in infos[0] if k != "t"]  # loss first, then the DPO terms: averaged over all processes
        local = [torch.stack(losses).mean().float()] + [torch.tensor(sum(i[k] for i in infos) / len(infos))
                                                         for k in keys]
        means = acc.reduce(torch.stack(local).to(acc.device), reduction="mean").tolist()
        return StepStats(self.step, self.s.max_steps, means[0], lr, None if norm is None else float(norm),
                         time.perf_counter() - t0, data_s, enc_s, dict(zip(keys, means[1:])))

    def save(self) -> Path | None:
        """Adapter file, then checkpoint (main process); other processes wait for it."""
        folder = None
        self.prefetch.wait()
        if self.s.run.is_main:
            folder = self.s.save(self.step)
            self.events.saved(self.step, folder)
        self.saved_step = self.step
        self.s.run.accelerator.wait_for_everyone()
        return folder

    def previews(self) -> None:
        s = self.s
        if s.run.is_main and s.previewer is not None and s.previewer.scenes:
            self.prefetch.wait()
            try:
                paths = s.previewer.render(s.run_dir, self.step, s.run.accelerator.autocast)
            except Exception as exc:  # noqa: BLE001 - a preview never stops training
                log.warning("preview at step %d failed: %s", self.step, exc)
                return
            self.events.previews(self.step, paths)

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def run(self) -> Summary:
        """Train until max_steps; Ctrl-C saves the last finished step and re-raises."""
        s, doc = self.s, self.s.cfg.doc
        self.events.start(s)
        runlog = RunLog(s.run_dir, s.run.is_main, doc.logging.tensorboard, s.start_step if s.resumed else None)
        folder = None
        try:
            if doc.preview.at_start and not s.resumed:
                self.previews()
            while self.step < s.max_steps:
                stats = self.train_step()
                if self._due(doc.logging.every) or self.step == s.max_steps:
                    runlog.write(record(stats, s))
                self.events.step(stats)
                if self.interrupted:
                    raise KeyboardInterrupt
                if self._due(doc.checkpoint.every) or self.step == s.max_steps:
                    folder = self.save()
                if self._due(doc.preview.every):
                    self.previews()
        except KeyboardInterrupt:
            if self.step > self.saved_step and self.step > 0:
                self.save()
            raise
        finally:
            self.prefetch.close()
            runlog.close()
        if self.step > self.saved_step:
            folder = self.save()
        return Summary(s.run_dir, s.start_step, self.step, s.adapter_file(self.step), folder)


def record(stats: StepStats, s: Session) -> dict:
    """The JSON line of one step."""
    out = {"step": stats.step, "loss": stats.loss, "lr": stats.lr, "step_s": round(stats.step_s, 6),
           "data_s": round(stats.data_s, 6), "encode_s": round(stats.encode_s, 6),
           "samples": stats.step * s.cfg.doc.train.batch, "method": s.cfg.method}
    if stats.grad_norm is not None:
        out["grad_norm"] = stats.grad_norm
    return out | stats.extra


def train(session: Session, events: Events | None = None) -> Summary:
    """Run a prepared session to its last step."""
    return Trainer(session, events).run()


__all__ = ["Events", "StepStats", "Summary", "Trainer", "open_session", "train"]
