"""Tiny random models for every role, built from configs with seeded weights (no downloads; tests, smoke runs).

Each builder returns what the real loader returns from a folder (model + PIL-backend processor), and
`save_tiny(kind, folder)` writes it in the real folder layout so the hub/folder code path can be tested too.
"""

from __future__ import annotations

import functools
import json
import string
import tempfile
from pathlib import Path
from typing import Any

SEED = 0
_BERT_SPECIAL = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1012: ".", 1029: "?"}
_WORDS = ("a the of and photo red blue green yellow black white brown dog cat ball tree car person cup "
          "woman man face robot teapot").split()


def _seeded(build: Any, seed: int = SEED) -> Any:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval()


def bert_tokenizer() -> Any:
    """WordPiece vocab with BERT's ids for [CLS] 101, [SEP] 102, '.' 1012, '?' 1029 (Grounding DINO needs them)."""
    from transformers import BertTokenizerFast

    vocab = [_BERT_SPECIAL.get(i, f"[unused{i}]") for i in range(1100)]
    free = [i for i in range(104, 1100) if i not in _BERT_SPECIAL]
    for i, tok in zip(free, [*string.ascii_lowercase, *string.digits, ",", *_WORDS,
                             *(f"##{c}" for c in string.ascii_lowercase)]):
        vocab[i] = tok
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        return BertTokenizerFast(vocab_file=str(Path(tmp) / "vocab.txt"), do_lower_case=True)


def clip_tokenizer() -> Any:
    """Byte-level CLIP tokenizer without merges (one token per character), context 77."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)]:
        vocab.setdefault(token, len(vocab))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(tmp, model_max_length=77)


@functools.cache
def grounding_dino() -> tuple[Any, Any]:
    """Grounding DINO (Swin backbone, BERT text) at d_model 32, two-stage, 20 queries; 64-px processor."""
    from transformers import (BertConfig, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoProcessor, SwinConfig)
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil)

    swin = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                      window_size=4, out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=1100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64)
    cfg = GroundingDinoConfig(backbone_config=swin, text_config=text, d_model=32, encoder_layers=1,
                              decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
                              encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=20, num_feature_levels=3,
                              encoder_n_points=2, decoder_n_points=2, max_text_len=32, two_stage=True)
    model = _seeded(lambda: GroundingDinoForObjectDetection(cfg))
    images = GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96})
    return model, GroundingDinoProcessor(image_processor=images, tokenizer=bert_tokenizer())


@functools.cache
def dinov2() -> tuple[Any, Any]:
    """DINOv2 (patch 14) with the real processor: resize 256, centre crop 224 -> a 16x16 patch grid."""
    from transformers import Dinov2Config, Dinov2Model
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       patch_size=14, image_size=224)
    images = BitImageProcessorPil(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                                  do_center_crop=True, resample=3, image_mean=[0.485, 0.456, 0.406],
                                  image_std=[0.229, 0.224, 0.225], do_convert_rgb=True)
    return _seeded(lambda: Dinov2Model(cfg)), images


@functools.cache
def dino_vit() -> tuple[Any, Any]:
    """DINO ViT (patch 16, CLS) with a 224x224 resize processor like facebook/dino-vits16."""
    from transformers import ViTConfig, ViTModel
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    cfg = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    patch_size=16, image_size=224)
    return _seeded(lambda: ViTModel(cfg, add_pooling_layer=False)), ViTImageProcessorPil()


@functools.cache
def clip() -> tuple[Any, Any]:
    """CLIP with both towers at width 32 (patch 32, 224 input) and the real CLIP processor."""
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tok = clip_tokenizer()
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=224, patch_size=32),
        projection_dim=16)
    return _seeded(lambda: CLIPModel(cfg)), CLIPProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=tok)


@functools.cache
def llava() -> tuple[Any, Any]:
    """An image-text-to-text model (LLaVA: CLIP vision + Qwen2 text) with a chat template; 28-px images."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor,
                              PreTrainedTokenizerFast, Qwen2Config)
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<image>"]})
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>", "<image>")}
    chat = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
            "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    images = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    proc = LlavaProcessor(image_processor=images, tokenizer=tok, chat_template=chat, patch_size=14,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=28, patch_size=14, projection_dim=32)
    text = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                       pad_token_id=ids["<|endoftext|>"])
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_id=ids["<image>"],
                      vision_feature_layer=-1, vision_feature_select_strategy="default")
    return _seeded(lambda: LlavaForConditionalGeneration(cfg)), proc


BUILDERS = {"grounding-dino": grounding_dino, "dinov2": dinov2, "dino-vit": dino_vit, "clip": clip,
            "llava": llava}


def save_tiny(name: str, folder: Path) -> Path:
    """Write a tiny model and its processor in the real layout (config.json, *.safetensors, processor files)."""
    model, processor = BUILDERS[name]()
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder
