"""Memory tiers (`--memory full|balanced|low`): what each needs on the GPU, and peak-memory bookkeeping (R21).

full      every component on the device (fastest).
balanced  only the transformer stays on the device. The text encoders and the VAE keep their weights in
          (pinned) CPU memory and stream them to the device layer by layer while they run (accelerate's
          `cpu_offload` hooks), so the 9.5 GB T5 never sits next to the 23.8 GB transformer.
low       the transformer and T5 are quantised to 4-bit NF4 with bitsandbytes through diffusers'
          `PipelineQuantizationConfig`; the adapter is fused through peft into the 4-bit weights
          (dequantise, add, requantise). Needs CUDA and bitsandbytes (the `low-memory` extra).

What each tier needs on the GPU, and which tiers fit a card: `ctxgen.models.tiers`.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING, Any

from ctxgen.core.errors import UsageError
from ctxgen.core.options import MEMORY_CHOICES, choose

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

MEMORY_TIERS = MEMORY_CHOICES
LOW_MEMORY_INSTALL = 'pip install -e ".[low-memory]" in the ctxgen checkout'
OFFLOADED = ("text_encoder", "text_encoder_2", "vae")  # streamed from CPU in the balanced tier
QUANTISED = ("transformer", "text_encoder_2")  # NF4 in the low tier
COMPONENTS = ("transformer", "text_encoder", "text_encoder_2", "vae")


def check_memory_tier(memory: str, device: torch.device) -> None:
    """Refuse an unknown tier, and `low` without CUDA or without bitsandbytes, before any weight is read."""
    if choose("--memory", memory, MEMORY_TIERS, "tier") != "low":
        return
    if device.type != "cuda":
        raise UsageError(
            f"--memory low: 4-bit NF4 weights (bitsandbytes) need a CUDA GPU but the device is {device.type}; "
            "use --memory balanced or full"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UsageError(f"--memory low needs bitsandbytes, which is not installed; run {LOW_MEMORY_INSTALL}")


def nf4_kwargs(compute_dtype: torch.dtype) -> dict[str, Any]:
    """BitsAndBytesConfig arguments of the low tier: NF4 with double quantisation, compute in the model dtype."""
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_compute_dtype": compute_dtype,
    }


def low_memory_quantization(compute_dtype: torch.dtype):
    """PipelineQuantizationConfig: NF4 for the transformer (diffusers) and T5 (transformers); needs bitsandbytes."""
    from diffusers import BitsAndBytesConfig as DiffusersBnb
    from diffusers import PipelineQuantizationConfig
    from transformers import BitsAndBytesConfig as TransformersBnb

    kwargs = nf4_kwargs(compute_dtype)
    return PipelineQuantizationConfig(
        quant_mapping={"transformer": DiffusersBnb(**kwargs), "text_encoder_2": TransformersBnb(**kwargs)}
    )


def _host_state(module: torch.nn.Module, pin: bool) -> dict[str, torch.Tensor]:
    """The module's CPU state dict, page-locked when streaming to CUDA (faster copies), plain if pinning fails."""
    state = {name: t.detach().to("cpu") for name, t in module.state_dict().items()}
    if not pin:
        return state
    try:
        return {name: t.pin_memory() for name, t in state.items()}
    except RuntimeError as exc:  # no pinnable memory left: stream from pageable memory instead
        logger.warning("could not pin offloaded weights (%s); streaming from pageable memory", exc)
        return state


def offload_idle(pipe, device: torch.device, names: tuple[str, ...] = OFFLOADED) -> None:
    """Balanced tier: keep these components' weights on the CPU and stream them to `device` layer by layer."""
    from accelerate import cpu_offload

    for name in names:
        module = getattr(pipe, name)
        module.to("cpu")
        cpu_offload(module, execution_device=device, state_dict=_host_state(module, device.type == "cuda"))
    logger.info("balanced memory: %s stream from CPU to %s when used", ", ".join(names), device)


def placement(pipe) -> dict[str, str]:
    """Where each model component's weights live: a device, or 'cpu->DEV' when streamed from the CPU."""
    out = {}
    for name in COMPONENTS:
        module = getattr(pipe, name)
        hook = getattr(module, "_hf_hook", None)
        devices = {str(p.device) for p in module.parameters()}
        if hook is not None and devices == {"meta"}:
            target = next((m._hf_hook.execution_device for m in module.modules()
                           if getattr(getattr(m, "_hf_hook", None), "offload", False)), None)  # fmt: skip
            out[name] = f"cpu->{target}"
        else:
            out[name] = ",".join(sorted(devices))
    return out


def reset_peak(device: torch.device) -> None:
    """Start a new peak-memory window on a CUDA device (no-op elsewhere)."""
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def read_peak(device: torch.device) -> int | None:
    """Bytes allocated at the peak since the last reset on CUDA; None where torch does not track it."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return None
