"""VQA role: an image-text-to-text model through transformers (Qwen2/3-VL class), or answers from a file.

`ask` sends one image and one text as a user turn of the model's chat template and decodes the new tokens
greedily (deterministic; see docs/eval.md). The benchmark-specific question wording lives in `ctxgen.eval`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ctxgen.core.errors import UserError
from ctxgen.vision.loading import Source, load_pretrained, model_source, pil_processor
from ctxgen.vision.registry import REFERENCE, TINY


class ChatVqa:
    """`ask(image, text) -> answer` with one chat turn; `max_new_tokens` as the LAMICBench++ scorer (128)."""

    def __init__(self, model: Any, processor: Any, ident: str, max_new_tokens: int = 128):
        self.model, self.processor, self.ident, self.max_new_tokens = model, processor, ident, max_new_tokens

    def ask(self, image: Any, text: str, key: str | None = None) -> str:
        import torch

        messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]
        inputs = self.processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                    return_dict=True, return_tensors="pt")
        inputs.pop("token_type_ids", None)
        param = next(self.model.parameters())
        inputs = {k: v.to(param.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(param.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]


class AnswerFile:
    """The exact stand-in: answers read from JSON `{image key: {question: answer}}`; `*` matches any."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.path}: cannot read the VQA answers file ({exc})") from exc
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise UserError(f"{self.path}: the VQA answers file must map image keys to {{question: answer}}")
        self.answers: dict[str, dict[str, str]] = data
        self.ident = f"{REFERENCE}:{self.path.name}"

    def ask(self, image: Any, text: str, key: str | None = None) -> str:
        for k in (key, "*"):
            table = self.answers.get(k or "*", {})
            for q in (text, "*"):
                if q in table:
                    return str(table[q])
        raise UserError(f"{self.path}: no answer for image {key!r} and question {text[:60]!r}; add it or a '*' entry")


def load_vqa(value: str, device: str, hub: bool) -> ChatVqa | AnswerFile:
    """`reference:ANSWERS.json`, `tiny-random`, a hub id or a folder -> a VQA role."""
    if value.startswith(REFERENCE):
        _, _, path = value.partition(":")
        if not path:
            raise UserError("vqa: `reference` needs an answers file: reference:answers.json")
        return AnswerFile(Path(path).expanduser())
    if value == TINY:
        from ctxgen.vision.tiny import llava

        model, processor = llava()
        return ChatVqa(model.to(device), processor, TINY, max_new_tokens=4)
    from transformers import AutoModelForImageTextToText, AutoProcessor

    source: Source = model_source("vqa", value, hub)
    model = load_pretrained(AutoModelForImageTextToText, source, dtype="auto").to(device).eval()
    return ChatVqa(model, pil_processor(AutoProcessor, source), source.ident)
