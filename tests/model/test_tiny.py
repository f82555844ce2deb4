"""The tiny FLUX-Kontext model: deterministic, FLUX-shaped, non-trivial, saved in the real layouts (R13, R21)."""

from __future__ import annotations

import safetensors.torch
import torch

from ctxgen.models.loading import load_model
from ctxgen.models.registry import ModelSpec
from ctxgen.models.tiny import build_tiny_components, lora_target_modules

TEXTS = ["", "a photo of a cat", "Modify the image to depict 'a dog'. Ensure the result appears natural!",
         "ÿ€ odd ☃"]


def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_same_weights_other_seed_differs(tiny_components):
    again, other = build_tiny_components(seed=0), build_tiny_components(seed=1)
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        assert _state_equal(tiny_components[name], again[name]), name
        assert not _state_equal(tiny_components[name], other[name]), name


def test_components_are_flux_kontext_shaped(tiny_components):
    tr, vae, sched = tiny_components["transformer"].config, tiny_components["vae"], tiny_components["scheduler"]
    assert (tr.num_layers, tr.num_single_layers, tr.in_channels, tr.guidance_embeds) == (2, 4, 64, True)
    assert sum(tr.axes_dims_rope) == tr.attention_head_dim
    assert tr.joint_attention_dim == tiny_components["text_encoder_2"].config.d_model
    assert tr.pooled_projection_dim == tiny_components["text_encoder"].config.hidden_size
    assert vae.config.latent_channels == 16 and 2 ** (len(vae.config.block_out_channels) - 1) == 8
    assert (vae.config.shift_factor, vae.config.scaling_factor) == (0.1159, 0.3611)
    assert vae.quant_conv is None and vae.post_quant_conv is None
    cfg = sched.config
    assert cfg.use_dynamic_shifting and (cfg.base_shift, cfg.max_shift, cfg.shift) == (0.5, 1.15, 3.0)
    assert (cfg.base_image_seq_len, cfg.max_image_seq_len) == (256, 4096)


def test_every_module_eval_float32(tiny_components):
    for name, comp in tiny_components.items():
        if isinstance(comp, torch.nn.Module):
            assert not any(m.training for m in comp.modules()), name
            assert all(p.dtype == torch.float32 for p in comp.parameters()), name


def test_transformer_output_depends_on_every_input(tiny_components, tiny_forward, tiny_inputs):
    tr = tiny_components["transformer"]
    for sub in tr.modules():
        if isinstance(sub, torch.nn.Linear):
            assert sub.weight.any(), "an all-zero Linear weight makes the output ignore its input"
    base = tiny_forward(tr, tiny_inputs(0))
    changed_img = tiny_inputs(0)
    changed_img["hidden_states"][0, 0] += 1.0  # one image token
    out_img = tiny_forward(tr, changed_img)
    assert (out_img[0, 5] - base[0, 5]).abs().max() > 1e-4  # another token sees it through attention
    changed_txt = tiny_inputs(0)
    changed_txt["encoder_hidden_states"][0, 3] += 1.0  # one text token
    assert (tiny_forward(tr, changed_txt) - base).abs().max() > 1e-4


def test_tokenizers_round_trip(tiny_components, tmp_path):
    from transformers import CLIPTokenizer, T5TokenizerFast

    clip, t5 = tiny_components["tokenizer"], tiny_components["tokenizer_2"]
    clip.save_pretrained(tmp_path / "clip")
    t5.save_pretrained(tmp_path / "t5")
    clip2, t52 = CLIPTokenizer.from_pretrained(tmp_path / "clip"), T5TokenizerFast.from_pretrained(tmp_path / "t5")
    for text in TEXTS:
        assert clip2(text).input_ids == clip(text).input_ids
        assert t52(text).input_ids == t5(text).input_ids
    assert (t52.pad_token_id, t52.eos_token_id, t52.unk_token_id) == (0, 1, 2)
    assert clip2.model_max_length == 77 and clip2.bos_token_id == 0 and clip2.eos_token_id == 1
    ids = t5("a photo of a cat").input_ids
    assert ids[-1] == 1 and len(ids) == 6  # whole-word pieces, then </s>
    assert clip("a photo of a cat").input_ids[0] == 0 and clip("a photo of a cat").input_ids[-1] == 1


def test_saved_layout_and_adapters(tiny_model_dir, tiny_components):
    base, adapter = tiny_model_dir / "base", tiny_model_dir / "adapter"
    for rel in ("model_index.json", "transformer/diffusion_pytorch_model.safetensors", "vae/config.json",
                "text_encoder/model.safetensors", "text_encoder_2/model.safetensors",
                "tokenizer/tokenizer_config.json", "tokenizer_2/tokenizer_config.json",
                "scheduler/scheduler_config.json"):  # fmt: skip
        assert (base / rel).is_file(), rel
    files = sorted(p.name for p in adapter.iterdir())
    assert files == ["contextgen_tiny_100.safetensors", "contextgen_tiny_200.safetensors"]
    sd = safetensors.torch.load_file(adapter / files[1])
    targets = lora_target_modules(2, 4)
    assert len(targets) == 1 + 2 * 6 + 4 * 6
    assert set(sd) == {f"transformer.{t}.lora_{ab}.weight" for t in targets for ab in "AB"}
    assert all(bool((t != 0).all()) for t in sd.values())  # random non-zero A and B
    assert "transformer.proj_out.lora_A.weight" not in sd  # only the single blocks' proj_out (R21)
    sd100 = safetensors.torch.load_file(adapter / files[0])
    assert not torch.equal(sd["transformer.x_embedder.lora_B.weight"], sd100["transformer.x_embedder.lora_B.weight"])


def test_folder_load_matches_in_memory_model(tiny_model_dir, tiny_forward, tiny_inputs):
    from ctxgen.sampling.conditioning import encode_pixels, encode_prompt

    on_disk = load_model(ModelSpec("tiny", str(tiny_model_dir / "base"), None), device="cpu", dtype="float32")
    in_memory = load_model(ModelSpec("tiny", "tiny", None), device="cpu", dtype="float32")
    # weights are bit-identical; CPU kernels may sum in another order for differently aligned (mmapped) tensors
    for (name, p), q in zip(on_disk.transformer.state_dict().items(), in_memory.transformer.state_dict().values()):
        assert torch.equal(p, q), name
    close = dict(atol=1e-5, rtol=0)
    torch.testing.assert_close(tiny_forward(on_disk.transformer), tiny_forward(in_memory.transformer), **close)
    a, b = encode_prompt(on_disk, "a photo of a cat", 16), encode_prompt(in_memory, "a photo of a cat", 16)
    torch.testing.assert_close(a.prompt_embeds, b.prompt_embeds, **close)
    torch.testing.assert_close(a.pooled, b.pooled, **close)
    pixels = torch.linspace(-1, 1, 32 * 48 * 3).reshape(32, 48, 3).numpy()
    torch.testing.assert_close(encode_pixels(on_disk, pixels), encode_pixels(in_memory, pixels), **close)
    assert not on_disk.fused and on_disk.adapter_file is None and on_disk.n_double == 2 and on_disk.n_single == 4
