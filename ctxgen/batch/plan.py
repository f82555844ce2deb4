"""Checking a batch before any work: options, devices and model ids (usage errors), then this shard's items."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from ctxgen.batch.manifest import Manifest
from ctxgen.batch.types import BACKENDS, Batch, BatchOptions, WorkItem
from ctxgen.core.errors import ModelError, UsageError, install_hint
from ctxgen.outputs.files import scene_out_dirs

RAY_INSTALL = install_hint("ray")


def parse_shard(spec: str) -> tuple[int, int]:
    """`i/N` with 0 <= i < N."""
    try:
        i_text, n_text = spec.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected i/N with integers, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {spec!r}: need N >= 1 and 0 <= i < N (i counts from 0)")
    return i, n


def select_shard(paths: list[Path], spec: str) -> list[Path]:
    """Rank scenes by a hash of their resolved path, deal ranks round-robin: N shards partition the set (sizes +-1)."""
    i, n = parse_shard(spec)
    ranked = sorted(range(len(paths)), key=lambda k: hashlib.sha256(str(paths[k].resolve()).encode()).digest())
    mine = {k for r, k in enumerate(ranked) if r % n == i}
    return [p for k, p in enumerate(paths) if k in mine]


def prepare_batch(paths: list[Path], opts: BatchOptions, shard: str | None = None) -> Batch:
    """Check every option before any work (errors here are usage or model errors) and list this shard's items."""
    if opts.backend not in BACKENDS:
        raise UsageError(f"--backend {opts.backend!r}: choose one of {', '.join(BACKENDS)}")
    if opts.backend == "ray" and importlib.util.find_spec("ray") is None:
        raise UsageError(f"--backend ray: Ray is not installed; run {RAY_INSTALL}")
    if opts.manifest is not None:
        Manifest(opts.manifest).check()
    dirs = scene_out_dirs(paths, opts.out)  # over all scenes, so every shard names folders the same way
    chosen = select_shard(paths, shard) if shard else paths
    items = tuple(WorkItem(i, p, dirs[p]) for i, p in enumerate(chosen))
    devices: tuple[str, ...] = ()
    if opts.devices is not None:
        from ctxgen.batch.devices import check_devices, parse_devices

        devices = parse_devices(opts.devices, for_ray=opts.backend == "ray")
        if opts.backend == "local":
            check_devices(devices)
    from ctxgen.models.availability import check_weights
    from ctxgen.models.loading import model_identity
    from ctxgen.models.registry import resolve_model_spec

    spec = resolve_model_spec(opts.model, opts.base, opts.adapter)
    device = "cpu" if opts.backend == "ray" else (devices[0] if devices else opts.device)
    if opts.backend == "local":  # a tier this device cannot run is a usage error, found before any load
        from ctxgen.models.loading import resolve_device
        from ctxgen.models.memory import check_memory_tier

        check_memory_tier(opts.render.memory, resolve_device(device))
    try:
        check_weights(spec)  # base and adapter together, before anything loads
        identity = model_identity(spec, device, opts.render.dtype, opts.render.fuse)
    except ModelError as exc:  # every scene fails with this one message: still a summary, records, a manifest
        return Batch(items, None, devices, model_error=str(exc))
    return Batch(items, identity, devices)
