"""Peak memory of the memory tiers (full / balanced / low) with full-size encoders: part of gpu_bench --tiers."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ctxgen.sampling.processors import install_processors  # noqa: E402
from ctxgen.sequence.masks import block_schedule  # noqa: E402

from bench_common import Scenario, free, randomize  # noqa: E402


ENCODERS = {  # FLUX.1's T5-XXL encoder, CLIP-L text model and VAE; toy sizes for --tiny
    "full": dict(t5=dict(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, vocab_size=32128),
                 clip=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           vocab_size=49408, projection_dim=768),
                 vae=dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32)),
    "tiny": dict(t5=dict(d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=2, vocab_size=128),
                 clip=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           vocab_size=128, projection_dim=32, bos_token_id=0, eos_token_id=1, pad_token_id=1),
                 vae=dict(block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4)),
}  # fmt: skip


def build_encoders(kind: str, device: torch.device, dtype: torch.dtype, seed: int) -> dict:
    """Random text encoders and VAE at FLUX size (or toy size), built directly on `device` in `dtype`."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    cfg = ENCODERS[kind]
    blocks = dict(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    factories = {
        "text_encoder_2": lambda: T5EncoderModel(T5Config(**cfg["t5"], feed_forward_proj="gated-gelu", dropout_rate=0)),
        "text_encoder": lambda: CLIPTextModel(CLIPTextConfig(**cfg["clip"], max_position_embeddings=77)),
        "vae": lambda: AutoencoderKL(**blocks, latent_channels=16, use_quant_conv=False, use_post_quant_conv=False,
                                     **cfg["vae"]),
    }  # fmt: skip
    out = {}
    previous = torch.get_default_dtype()
    for i, (name, make) in enumerate(factories.items()):
        torch.set_default_dtype(dtype)  # built in place: their index buffers (e.g. CLIP's position ids) stay valid
        try:
            with torch.device(device):
                module = make()
        finally:
            torch.set_default_dtype(previous)
        randomize(module, seed + i)
        out[name] = module.eval().requires_grad_(False)
    return out


def render_peak(model, enc: dict, scn: Scenario, inputs: dict, masks: dict, device: torch.device, dtype) -> int | None:
    """Peak bytes over one scene: both text encoders, VAE encodes of layout and refs, one step, one decode."""
    from ctxgen.models.memory import read_peak, reset_peak

    gen = torch.Generator().manual_seed(0)
    free(device)
    reset_peak(device)
    with torch.inference_mode():
        t5, clip = enc["text_encoder_2"], enc["text_encoder"]
        t5(torch.randint(0, t5.config.vocab_size, (1, scn.text_len), generator=gen).to(device))  # (1, T, 4096)
        clip(torch.randint(0, clip.config.vocab_size, (1, 77), generator=gen).to(device))
        for px in [scn.size] + [16 * scn.ref_side] * scn.n_refs:
            enc["vae"].encode(torch.randn(1, 3, px, px, generator=gen).to(device, dtype))  # (1, 16, px/8, px/8)
        model(**inputs, joint_attention_kwargs={"ctxgen_masks": masks}, return_dict=False)
        enc["vae"].decode(torch.randn(1, 16, scn.size // 8, scn.size // 8, generator=gen).to(device, dtype))
    return read_peak(device)


def low_tier(model, enc: dict, scn, inputs, masks, device, dtype) -> dict:
    """NF4 transformer and T5 through the same BitsAndBytesConfig as `--memory low`, loaded from a saved copy."""
    import importlib.util

    from diffusers import BitsAndBytesConfig as DiffusersBnb
    from diffusers import FluxTransformer2DModel
    from transformers import BitsAndBytesConfig as TransformersBnb
    from transformers import T5EncoderModel

    from ctxgen.models.memory import nf4_kwargs

    if device.type != "cuda" or importlib.util.find_spec("bitsandbytes") is None:
        return {"error": "skipped: needs CUDA and bitsandbytes (pip install -e '.[low-memory]')"}
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(f"{tmp}/transformer")
        enc["text_encoder_2"].save_pretrained(f"{tmp}/t5")
        model.to("cpu")
        enc["text_encoder_2"].to("cpu")
        free(device)
        kw = nf4_kwargs(dtype)
        nf4 = FluxTransformer2DModel.from_pretrained(f"{tmp}/transformer", quantization_config=DiffusersBnb(**kw),
                                                     torch_dtype=dtype).eval()  # fmt: skip
        t5 = T5EncoderModel.from_pretrained(f"{tmp}/t5", quantization_config=TransformersBnb(**kw), dtype=dtype).eval()
    install_processors(nf4, block_schedule(nf4.config.num_layers, nf4.config.num_single_layers))
    try:
        return {"peak_bytes": render_peak(nf4, {**enc, "text_encoder_2": t5}, scn, inputs, masks, device, dtype)}
    finally:
        del nf4, t5
        model.to(device)
        free(device)


def tier_rows(model, scn: Scenario, inputs: dict, masks: dict, args, device, dtype) -> list[dict]:
    """Render peak per memory tier: full (all on the device), low (NF4), balanced (ctxgen.memory.offload_idle)."""
    from types import SimpleNamespace

    from ctxgen.models.memory import offload_idle

    enc = build_encoders("tiny" if args.tiny else "full", device, dtype, args.seed + 7)
    rows = []
    for tier in ("full", "low", "balanced"):
        try:
            if tier == "balanced":
                offload_idle(SimpleNamespace(**enc), device)
            if tier == "low":
                row = low_tier(model, enc, scn, inputs, masks, device, dtype)
            else:
                row = {"peak_bytes": render_peak(model, enc, scn, inputs, masks, device, dtype)}
        except Exception as exc:  # noqa: BLE001
            row = {"error": f"{type(exc).__name__}: {str(exc).strip()[:200]}"}
        rows.append({"tier": tier, **row})
        free(device)
    return rows
