"""A tiny FLUX.1-Kontext-shaped model built offline from configs, for tests (R13, R21)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

# Words of the R3 prompt template (and a few test words) get whole tokens, so prompts stay short.
_WORDS = (
    "a an of the to and in for with photo picture image cat dog modify depict while preserving original "
    "layout key object features human identities including facial details adjust element poses better "
    "composition naturally fill background ensure result appears natural visually harmonious"
).split()
_CLIP_MAX_LEN = 77  # FLUX's CLIP context length
_T5_MAX_LEN = 512  # FLUX's T5 max_sequence_length
LORA_RANK = 4
ADAPTER_STEPS = (100, 200)

# (module path template, per double block / per single block / once) for the R21 LoRA targets.
_DOUBLE_TARGETS = ("norm1.linear", "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "ff.net.2")
_SINGLE_TARGETS = ("norm.linear", "proj_mlp", "proj_out", "attn.to_q", "attn.to_k", "attn.to_v")

TRANSFORMER_CONFIG = dict(
    patch_size=1,
    in_channels=64,  # 16 latent channels packed 2x2 (R13)
    num_layers=2,
    num_single_layers=4,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=32,  # = T5 d_model
    pooled_projection_dim=32,  # = CLIP hidden size
    guidance_embeds=True,
    axes_dims_rope=(4, 6, 6),  # sums to attention_head_dim
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,  # 4 blocks -> scale factor 8
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(8, 8, 16, 16),
    layers_per_block=1,
    latent_channels=16,
    norm_num_groups=4,
    sample_size=128,
    shift_factor=0.1159,
    scaling_factor=0.3611,
    use_quant_conv=False,
    use_post_quant_conv=False,
)
SCHEDULER_CONFIG = dict(  # FLUX.1-Kontext-dev's scheduler_config.json
    num_train_timesteps=1000,
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
)


def _clip_tokenizer():
    """Byte-level BPE CLIP tokenizer from a written vocab.json/merges.txt (no downloads)."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)]:
        vocab.setdefault(token, len(vocab))
    merges: list[str] = []
    for word in _WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        current = pieces[0]
        for piece in pieces[1:]:
            merge = f"{current} {piece}"
            current += piece
            if merge not in merges:
                merges.append(merge)
            vocab.setdefault(current, len(vocab))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(tmp, model_max_length=_CLIP_MAX_LEN)


def _t5_tokenizer():
    """Unigram T5 tokenizer (<pad>=0, </s>=1, <unk>=2) built with the `tokenizers` library."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    pieces += [(chr(i), -6.0) for i in range(33, 127)]  # printable ASCII, one token each
    words = dict.fromkeys(w for word in _WORDS for w in (word, word.capitalize()))
    pieces += [("▁" + w, -2.0) for w in words]  # whole words beat their characters
    # the same pipeline T5Tokenizer rebuilds on load (no normalizer, unk_id=2), so it round-trips
    backend = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(
        tokenizer_object=backend,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_ids=0,
        model_max_length=_T5_MAX_LEN,
    )


def _text_encoders(clip_vocab: int, t5_vocab: int, seed: int) -> tuple:
    """Tiny CLIPTextModel (hidden 32) and T5EncoderModel (d_model 32), seeded."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    clip_cfg = CLIPTextConfig(
        vocab_size=clip_vocab, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=_CLIP_MAX_LEN, projection_dim=32, hidden_act="quick_gelu",
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )  # fmt: skip
    t5_cfg = T5Config(
        vocab_size=t5_vocab, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=32, feed_forward_proj="gated-gelu",
        dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )  # fmt: skip
    torch.manual_seed(seed)
    clip = CLIPTextModel(clip_cfg)
    torch.manual_seed(seed)
    t5 = T5EncoderModel(t5_cfg)
    return clip, t5


def _reinit_zero_params(module: torch.nn.Module, std: float = 0.02) -> None:
    """Give all-zero Linear weights/biases small random values so every output depends on the input."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, torch.nn.Linear):
                for p in (sub.weight, sub.bias):
                    if p is not None and not bool(p.any()):
                        p.normal_(0.0, std)


def build_tiny_components(seed: int = 0) -> dict:
    """Every FluxKontextPipeline component at tiny size, seeded, float32, eval (R13 shapes: 64-channel tokens)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    tokenizer, tokenizer_2 = _clip_tokenizer(), _t5_tokenizer()
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(**TRANSFORMER_CONFIG)
    torch.manual_seed(seed + 1)
    _reinit_zero_params(transformer)
    torch.manual_seed(seed)
    vae = AutoencoderKL(**VAE_CONFIG)
    text_encoder, text_encoder_2 = _text_encoders(len(tokenizer), len(tokenizer_2), seed)
    components = dict(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
    )
    for value in components.values():
        if isinstance(value, torch.nn.Module):
            if any(p.dtype != torch.float32 for p in value.parameters()):  # only if torch's default dtype differs
                value.float()
            value.eval()
    return components


def lora_target_modules(n_double: int, n_single: int) -> list[str]:
    """Full module paths of the R21 LoRA targets in a FluxTransformer2DModel."""
    names = ["x_embedder"]
    names += [f"transformer_blocks.{i}.{t}" for i in range(n_double) for t in _DOUBLE_TARGETS]
    names += [f"single_transformer_blocks.{i}.{t}" for i in range(n_single) for t in _SINGLE_TARGETS]
    return names


def random_lora_state_dict(transformer, rank: int = LORA_RANK, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random non-zero LoRA A/B for the R21 targets, diffusers key format without the `transformer.` prefix."""
    gen = torch.Generator().manual_seed(seed)
    cfg = transformer.config
    state: dict[str, torch.Tensor] = {}
    for name in lora_target_modules(cfg.num_layers, cfg.num_single_layers):
        linear = transformer.get_submodule(name)
        a = torch.randn(rank, linear.in_features, generator=gen) / linear.in_features**0.5  # (r, in)
        b = torch.randn(linear.out_features, rank, generator=gen) * 0.05  # (out, r)
        state[f"{name}.lora_A.weight"] = a.contiguous()
        state[f"{name}.lora_B.weight"] = b.contiguous()
    return state


def _save_adapter(pipe_cls, transformer, folder: Path, step: int) -> Path:
    """Write `contextgen_tiny_<step>.safetensors` atomically in diffusers LoRA format (R21)."""
    name = f"contextgen_tiny_{step}.safetensors"
    tmp_name = f".{name}.tmp"
    pipe_cls.save_lora_weights(
        folder, transformer_lora_layers=random_lora_state_dict(transformer, seed=step), weight_name=tmp_name
    )
    os.replace(folder / tmp_name, folder / name)
    return folder / name


def save_tiny_model(dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Save the tiny base in the diffusers layout (`dir/base`) and two adapters (`dir/adapter`, steps 100, 200)."""
    from diffusers import FluxKontextPipeline

    root = Path(dir)
    root.mkdir(parents=True, exist_ok=True)
    components = build_tiny_components(seed)
    base_dir, adapter_dir = root / "base", root / "adapter"
    tmp_base = Path(tempfile.mkdtemp(prefix=".base.", dir=root))  # written whole, then moved into place
    try:
        FluxKontextPipeline(**components).save_pretrained(tmp_base, safe_serialization=True)
    except BaseException:
        shutil.rmtree(tmp_base, ignore_errors=True)
        raise
    if base_dir.exists():
        shutil.rmtree(base_dir)
    os.replace(tmp_base, base_dir)
    adapter_dir.mkdir(exist_ok=True)
    for step in ADAPTER_STEPS:
        _save_adapter(FluxKontextPipeline, components["transformer"], adapter_dir, step)
    return base_dir, adapter_dir
