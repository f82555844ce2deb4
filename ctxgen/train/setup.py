"""Set up a run: processes and precision (accelerate), the frozen base with its adapters (T1, T4), the trained
LoRA, the optimizer. The same code on one CPU, one GPU or many (`accelerate launch -m ctxgen train ...`, DDP).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import torch

from ctxgen.core.errors import UsageError
from ctxgen.models.adapter import ADAPTER_NAME
from ctxgen.models.loading import LoadedModel, load_model
from ctxgen.models.registry import ModelSpec
from ctxgen.sampling.processors import install_processors
from ctxgen.sequence.masks import block_schedule
from ctxgen.train import lora
from ctxgen.train.config import TrainConfig
from ctxgen.train.optim import build_optimizer

log = logging.getLogger(__name__)


@dataclass
class Run:
    """What a training run holds while it trains."""

    cfg: TrainConfig
    accelerator: Any  # accelerate.Accelerator
    model: LoadedModel  # the pipeline; model.transformer is the plain (unwrapped) transformer
    forward: torch.nn.Module  # what the training forward calls: the transformer, DDP-wrapped on many processes
    params: list[torch.nn.Parameter]  # the trained LoRA weights (float32)
    names: list[str]  # LoRA target modules
    optimizer: Any  # accelerate's wrapper around the torch optimizer
    accumulation: int  # micro-batches per process per optimizer step
    init_parts: dict  # the initial adapter's parts (DPO: fused into the base; kept to write the combined file)

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world(self) -> int:
        return self.accelerator.num_processes


def make_accelerator(cfg: TrainConfig):
    """accelerate's Accelerator: bf16 autocast or none, accumulation = global batch / processes (one example each)."""
    from accelerate import Accelerator, PartialState

    cpu = cfg.doc.train.device == "cpu"
    world = PartialState(cpu=cpu).num_processes
    batch = cfg.doc.train.batch
    if batch % world:
        raise UsageError(f"train.batch {batch} does not split over {world} processes (one example per micro-batch); "
                         f"use a multiple of {world}")
    precision = "bf16" if cfg.doc.train.precision == "bf16" else "no"
    return Accelerator(gradient_accumulation_steps=batch // world, mixed_precision=precision, cpu=cpu)


def load_base(cfg: TrainConfig, device: torch.device) -> tuple[LoadedModel, dict]:
    """The frozen base (bf16 or fp32; NF4 with quantize) with the initial adapter read; DPO fuses it (T4)."""
    dtype = "bfloat16" if cfg.doc.train.precision == "bf16" else "float32"
    memory = "low" if cfg.doc.model.quantize == "nf4" else "full"
    spec = ModelSpec(preset="train", base=cfg.base, adapter=cfg.init_adapter)
    model = load_model(spec, device=str(device), dtype=dtype, fuse=False, memory=memory)
    parts: dict = {}
    if cfg.init_adapter is not None:
        parts = lora.collect(model.transformer, ADAPTER_NAME)
        if cfg.method == "dpo":  # T4: SFT fused; reference = this base with the new LoRA disabled
            model.pipe.fuse_lora(components=["transformer"], lora_scale=1.0, adapter_names=[ADAPTER_NAME])
        model.pipe.unload_lora_weights()
        model = replace(model, fused=cfg.method == "dpo")
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        getattr(model.pipe, name).requires_grad_(False)
    return model, parts


def prepare_run(cfg: TrainConfig) -> Run:
    """Accelerator, base, processors (R18), the trained LoRA (float32, keyed init), optimizer."""
    acc = make_accelerator(cfg)
    model, parts = load_base(cfg, acc.device)
    transformer = model.transformer
    install_processors(transformer, block_schedule(model.n_double, model.n_single))
    names = lora.target_modules(transformer, cfg.doc.lora.targets)
    params = lora.add_policy(transformer, cfg.rank, cfg.alpha, cfg.doc.lora.init, names, cfg.doc.seed)
    if cfg.method == "sft" and parts:
        lora.load_into_policy(transformer, parts, f"model.init_adapter {cfg.init_adapter}")
    if cfg.doc.train.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    optimizer = build_optimizer(params, cfg.doc.optimizer, acc.device)
    forward, optimizer = acc.prepare(transformer, optimizer)
    log.info("training %s: %d LoRA parameters (rank %d) on %d process(es), %s", cfg.method,
             sum(p.numel() for p in params), cfg.rank, acc.num_processes, acc.device)
    return Run(cfg, acc, model, forward, params, names, optimizer, cfg.doc.train.batch // acc.num_processes, parts)


def named_params(run: Run) -> dict[str, torch.nn.Parameter]:
    """The trained parameters by their name in the transformer (checkpoint keys)."""
    ids = {id(p) for p in run.params}
    return {n: p for n, p in run.model.transformer.named_parameters() if id(p) in ids}
