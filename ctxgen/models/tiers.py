"""What each memory tier (`--memory full|balanced|low`) needs on the GPU for FLUX.1-Kontext-dev + the ContextGen
adapter in bf16, and which tiers fit a card (for `ctxgen doctor` and the README).

`TIER_SIZES` holds parameter counts from the real configs built on the meta device (`architecture_sizes` counts
them again; a test checks they agree); working memory is the bytes of tensors alive at once in a meta-device
forward: estimates, until `benchmarks/gpu_bench.py --tiers` measures a render peak on a GPU
(`tier_needs(measured)` then prefers the measurement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctxgen.models.memory import COMPONENTS, LOW_MEMORY_INSTALL, MEMORY_TIERS, OFFLOADED, QUANTISED

GB = 10**9


@dataclass(frozen=True)
class Sizes:
    """FLUX.1-Kontext-dev counted on the meta device (`architecture_sizes`): parameters and working bytes."""

    params: dict[str, int]  # every parameter of each component
    nf4_params: dict[str, int]  # the weights bitsandbytes stores in 4 bits (Linear layers not on its skip lists)
    adapter_params: int  # the R21 LoRA, r=512 on its targets
    step_bytes_per_token: int  # one transformer forward: peak bytes of live tensors per sequence token
    vae_bytes_per_pixel: int  # VAE decode (the larger of encode and decode) per output pixel
    t5_bytes: int  # T5 over 512 tokens


TIER_SIZES = Sizes(
    params={"transformer": 11_901_408_320, "text_encoder": 123_060_480, "text_encoder_2": 4_762_310_656,
            "vae": 83_819_683},
    nf4_params={"transformer": 11_898_322_944, "text_encoder": 84_934_656,
                "text_encoder_2": 3_623_878_656, "vae": 2_097_152},  # T5 keeps its `wo` layers in bf16
    adapter_params=1_854_439_424, step_bytes_per_token=105_487, vae_bytes_per_pixel=1_536, t5_bytes=96_468_992,
)  # fmt: skip
BF16 = 2  # bytes per parameter
NF4 = 0.5 + 1 / 64 + 4 / (64 * 256)  # bytes per 4-bit weight: the nibble, a uint8 absmax per 64, fp32 per 256 absmax
TEXT_LEN = 512  # FLUX's T5 length
RESERVE = 1 * GB  # on the card but outside torch's peak: CUDA context, library workspaces
SLACK = 0.05  # allocator fragmentation on top of the peak


@dataclass(frozen=True)
class Scenario:
    """A render size: square canvas, square references at the R4 base size."""

    name: str
    side: int
    refs: int

    @property
    def seq_len(self) -> int:
        """S = T + 2M + sum L_n (R13), from the sequence builder itself."""
        from ctxgen.layout.geometry import base_size, resize_dims
        from ctxgen.sequence.tokens import build_sequence

        w, h = resize_dims(self.side, self.side, base_size(self.side, self.side))
        grid = (h // 16, w // 16)
        return build_sequence((self.side, self.side), TEXT_LEN, [grid] * self.refs).seq_len


SCENARIOS = (Scenario("768-3refs", 768, 3), Scenario("1024-6refs", 1024, 6))  # gpu_bench's scenario names


def weights_on_device(tier: str, sizes: Sizes = TIER_SIZES) -> int:
    """Bytes of weights that stay on the GPU in a tier (streamed components move through in layer-size pieces)."""
    total = 0.0
    for name in COMPONENTS:
        params = sizes.params[name]
        if tier == "balanced" and name in OFFLOADED:
            continue
        if tier == "low" and name in QUANTISED:
            total += sizes.nf4_params[name] * NF4 + (params - sizes.nf4_params[name]) * BF16
        else:
            total += params * BF16
    return int(total)


def render_bytes(tier: str, scn: Scenario, sizes: Sizes = TIER_SIZES) -> int:
    """Estimated render peak: the tier's weights plus the largest stage's working memory (step, VAE or T5)."""
    vae = sizes.vae_bytes_per_pixel * scn.side**2 + (sizes.params["vae"] * BF16 if tier == "balanced" else 0)
    work = max(sizes.step_bytes_per_token * scn.seq_len, vae, sizes.t5_bytes)
    return weights_on_device(tier, sizes) + work


def load_bytes(tier: str, sizes: Sizes = TIER_SIZES) -> int:
    """Estimated loading peak: the tier's weights plus the bf16 adapter while peft fuses it (then it is freed)."""
    return weights_on_device(tier, sizes) + sizes.adapter_params * BF16


def tier_needs(measured: dict[tuple[str, str], int] | None = None) -> list[dict[str, Any]]:
    """Per tier and scenario: render, loading and peak bytes, and whether the render peak is measured."""
    measured = measured or {}
    rows = []
    for tier in MEMORY_TIERS:
        load = load_bytes(tier)
        needs = {}
        for scn in SCENARIOS:
            got = measured.get((tier, scn.name))
            render = got if got is not None else render_bytes(tier, scn)
            needs[scn.name] = {"render_bytes": render, "load_bytes": load, "peak_bytes": max(render, load),
                               "source": "measured" if got is not None else "estimate"}
        rows.append({"tier": tier, "weights_bytes": weights_on_device(tier), "needs": needs})
    return rows


def card_bytes(peak: int) -> int:
    """The GPU memory a peak needs: SLACK for allocator fragmentation, RESERVE for what torch does not count."""
    return int(peak * (1 + SLACK) + RESERVE)


def advise(total_memory: int, rows: list[dict[str, Any]], low_ready: bool) -> dict[str, Any]:
    """Which tiers fit a card (every scenario, or only the smallest), the fastest of them, and one sentence."""
    small = SCENARIOS[0].name
    every = [r["tier"] for r in rows if all(card_bytes(n["peak_bytes"]) <= total_memory for n in r["needs"].values())]
    some = [r["tier"] for r in rows if card_bytes(r["needs"][small]["peak_bytes"]) <= total_memory]
    best = (every or some or [None])[0]
    need = {r["tier"]: max(card_bytes(n["peak_bytes"]) for n in r["needs"].values()) for r in rows}
    if best is None:
        text = f"no tier fits; --memory low needs about {need['low'] / GB:.1f} GB"
    else:
        slower = [t for t in need if need[t] > total_memory and MEMORY_TIERS.index(t) < MEMORY_TIERS.index(best)]
        text = f"use --memory {best}" + (" (the default)" if best == MEMORY_TIERS[0] else "")
        text += "".join(f"; {t} needs about {need[t] / GB:.1f} GB" for t in slower)
        if best not in every:
            text += f"; only up to {SCENARIOS[0].side}x{SCENARIOS[0].side} with {SCENARIOS[0].refs} references"
        if best == "low" and not low_ready:
            text += f"; install its extra first: {LOW_MEMORY_INSTALL}"
    return {"fits_every_size": every, "fits_smallest_size": some, "recommended": best, "advice": text}


def read_measurements(result: dict) -> dict[tuple[str, str], int]:
    """{(tier, scenario): peak bytes} from a `gpu_bench.py --tiers` JSON result (rows with errors are skipped)."""
    block = result.get("tiers") or {}
    scenario = block.get("scenario")
    return {(row["tier"], scenario): int(row["peak_bytes"]) for row in block.get("rows", ())
            if row.get("peak_bytes") and row.get("tier") in MEMORY_TIERS}


FLUX_CONFIGS = {  # FLUX.1-Kontext-dev's published component configs (only the fields that size the weights)
    "transformer": dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                        num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
                        guidance_embeds=True, axes_dims_rope=(16, 56, 56)),
    "text_encoder": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                         vocab_size=49408, projection_dim=768, max_position_embeddings=77),
    "text_encoder_2": dict(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, vocab_size=32128,
                           feed_forward_proj="gated-gelu"),
    "vae": dict(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=16,
                use_quant_conv=False, use_post_quant_conv=False),
}  # fmt: skip


def build_on_meta(dtype=None) -> dict[str, Any]:
    """The four components at full size on the meta device (no memory, no weights), in `dtype` (bf16)."""
    import torch
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    makers = {"transformer": lambda c: FluxTransformer2DModel(**c), "vae": lambda c: AutoencoderKL(**c),
              "text_encoder": lambda c: CLIPTextModel(CLIPTextConfig(**c)),
              "text_encoder_2": lambda c: T5EncoderModel(T5Config(**c))}
    with torch.device("meta"):
        return {name: make(FLUX_CONFIGS[name]).to(dtype or torch.bfloat16).eval() for name, make in makers.items()}


def _nf4_count(module) -> int:
    """Weights of the Linear layers bitsandbytes converts (the model's keep-in-fp32 names stay in bf16)."""
    import torch

    keep = tuple(getattr(module, "_keep_in_fp32_modules", None) or ())
    return sum(m.weight.numel() for name, m in module.named_modules()
               if isinstance(m, torch.nn.Linear) and not any(name.endswith(k) for k in keep))


class _LiveBytes:
    """A dispatch mode tracking the bytes of tensors created inside it that are alive at once (views shared)."""

    def __init__(self, external) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        self.peak, self.live, self.refs = 0, 0, {}
        self.external = {t.untyped_storage()._cdata for t in external}
        owner = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                owner.track(out)
                return out

        self.mode = Mode()

    def track(self, out) -> None:
        import weakref

        import torch
        from torch.utils._pytree import tree_flatten

        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or t.untyped_storage()._cdata in self.external:
                continue
            key = t.untyped_storage()._cdata
            if key not in self.refs:
                self.refs[key] = [0, t.untyped_storage().nbytes()]
                self.live += self.refs[key][1]
                self.peak = max(self.peak, self.live)
            self.refs[key][0] += 1
            weakref.finalize(t, self.drop, key)

    def drop(self, key) -> None:
        self.refs[key][0] -= 1
        if self.refs[key][0] == 0:
            self.live -= self.refs.pop(key)[1]


def _peak(module, call, *inputs) -> int:
    """Peak live bytes of call(*inputs) on meta tensors; SDPA allocates only its output, as the fused kernels."""
    import torch
    import torch.nn.functional as F

    counter = _LiveBytes([*module.parameters(), *module.buffers(), *inputs])
    sdpa = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = lambda query, *a, **k: torch.empty_like(query)
    try:
        with torch.inference_mode(), counter.mode:
            call(*inputs)
    finally:
        F.scaled_dot_product_attention = sdpa
    return counter.peak


def count_forward_peaks(models: dict, seq_len: int, text_len: int, side: int, dtype) -> dict[str, int]:
    """Working bytes per stage on meta tensors: transformer step per token, VAE per pixel, T5 over text_len."""
    import torch

    tr, vae, t5 = models["transformer"], models["vae"], models["text_encoder_2"]
    with torch.device("meta"):
        img, txt = torch.empty(1, seq_len - text_len, 64, dtype=dtype), torch.empty(1, text_len, 4096, dtype=dtype)
        one, pooled = torch.empty(1, dtype=dtype), torch.empty(1, 768, dtype=dtype)
        img_ids, txt_ids = torch.empty(seq_len - text_len, 3), torch.empty(text_len, 3)
        pixels = torch.empty(1, 3, side, side, dtype=dtype)
        latents = torch.empty(1, 16, side // 8, side // 8, dtype=dtype)
        ids = torch.zeros(1, text_len, dtype=torch.long)

    def step(*xs):
        return tr(hidden_states=xs[0], encoder_hidden_states=xs[1], pooled_projections=xs[2], timestep=xs[3],
                  guidance=xs[3], img_ids=xs[4], txt_ids=xs[5], return_dict=False)

    step_peak = _peak(tr, step, img, txt, pooled, one, img_ids, txt_ids)
    vae_peak = max(_peak(vae, lambda x: vae.encode(x).latent_dist.mode(), pixels),
                   _peak(vae, lambda z: vae.decode(z).sample, latents))
    return {"step_bytes_per_token": round(step_peak / seq_len), "vae_bytes_per_pixel": round(vae_peak / side**2),
            "t5_bytes": _peak(t5, t5, ids)}


def architecture_sizes() -> Sizes:
    """TIER_SIZES counted again from FLUX_CONFIGS on the meta device: parameters, NF4 weights, the R21 adapter,
    and the live-tensor peak of one forward per stage (attention as a memory-efficient kernel: output only)."""
    import torch

    from ctxgen.models.tiny import lora_target_modules

    models = build_on_meta()
    tr = models["transformer"]
    cfg = tr.config
    lora = sum(512 * (tr.get_submodule(n).in_features + tr.get_submodule(n).out_features)
               for n in lora_target_modules(cfg.num_layers, cfg.num_single_layers))
    peaks = count_forward_peaks(models, SCENARIOS[0].seq_len, TEXT_LEN, SCENARIOS[0].side, torch.bfloat16)
    return Sizes(params={n: sum(p.numel() for p in m.parameters()) for n, m in models.items()},
                 nf4_params={n: _nf4_count(m) for n, m in models.items()}, adapter_params=lora, **peaks)
