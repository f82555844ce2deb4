"""Prompt embeddings for training (R3, R13 text): the pipeline's own encoders, a few kept in memory, and an optional
folder cache (safetensors) that, once filled, lets training unload CLIP and T5 entirely.

A cache file holds one wrapped prompt's T5 states (1, T, D) and CLIP pooled vector (1, Dp) as the encoders
produced them (the model's dtype), keyed by sha256 of (base, T, dtype, text). At T = 512 a bf16 entry of the real
model is 4 MiB, so a folder cache suits datasets whose prompts fit the disk (docs/train.md).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ctxgen.core.errors import UserError
from ctxgen.core.fsio import write_bytes

log = logging.getLogger(__name__)
MEMORY_ENTRIES = 64  # prompts kept in memory (the empty caption of caption dropout among them)


class TextEncoder:
    """wrapped prompt -> (prompt_embeds (1, T, D), pooled (1, Dp), text_ids (T, 3)) on the model's device."""

    def __init__(self, model, text_len: int, folder: Path | None = None):
        self.model, self.text_len, self.folder = model, text_len, folder
        self.memory: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self.unloaded = False
        self.lock = threading.Lock()
        self.encoded = 0  # texts that went through the encoders (not served from a cache)

    def key(self, text: str) -> str:
        ident = f"{self.model.base_id}\n{self.text_len}\n{self.model.dtype}\n{text}"
        return hashlib.sha256(ident.encode("utf-8")).hexdigest()

    def _file(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def _encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        from ctxgen.sampling.conditioning import encode_prompt

        if self.unloaded:
            raise UserError(f"text cache {self.folder}: prompt {text[:60]!r} is not in it and the text encoders are "
                            "unloaded; run again (the cache is filled with every prompt at the start)")
        self.encoded += 1
        emb = encode_prompt(self.model, text, self.text_len)
        return emb.prompt_embeds.detach(), emb.pooled.detach()

    def _load(self, key: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        import safetensors.torch

        if self.folder is None or not self._file(key).is_file():
            return None
        try:
            t = safetensors.torch.load_file(str(self._file(key)), device=str(self.model.device))
        except Exception as exc:  # a damaged file is encoded again
            log.warning("text cache %s unreadable (%s); encoding again", self._file(key), exc)
            return None
        return t["prompt_embeds"], t["pooled"]

    def _store(self, key: str, text: str, value: tuple[torch.Tensor, torch.Tensor]) -> None:
        import safetensors.torch

        if self.folder is not None:
            tensors = {"prompt_embeds": value[0].contiguous().cpu(), "pooled": value[1].contiguous().cpu()}
            write_bytes(self._file(key), safetensors.torch.save(tensors, metadata={"text": text}))

    def get(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        with self.lock:  # the prefetch thread and previews share the encoder
            return self._get(text)

    def _get(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        key = self.key(text)
        if key in self.memory:
            self.memory.move_to_end(key)
            return self.memory[key]
        value = self._load(key)
        if value is None:
            value = self._encode(text)
            self._store(key, text, value)
        self.memory[key] = value
        while len(self.memory) > MEMORY_ENTRIES:
            self.memory.popitem(last=False)
        return value

    def __call__(self, text: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        embeds, pooled = self.get(text)
        text_ids = torch.zeros(self.text_len, 3, device=self.model.device)  # (T, 3) the pipeline's zeros (R14)
        return embeds, pooled, text_ids

    def fill(self, texts: Iterable[str], on_item: Callable[[int, int], None] | None = None) -> int:
        """Encode every text the folder lacks (main process); returns how many were encoded."""
        todo = sorted({t for t in texts if not self._file(self.key(t)).is_file()})
        for i, text in enumerate(todo):
            self._store(self.key(text), text, self._encode(text))
            if on_item is not None:
                on_item(i + 1, len(todo))
        return len(todo)

    def unload_encoders(self) -> None:
        """Drop CLIP and T5 from the pipeline: every prompt training needs is in the folder."""
        pipe = self.model.pipe
        pipe.text_encoder = None
        pipe.text_encoder_2 = None
        self.unloaded = True
        if self.model.device.type == "cuda":
            torch.cuda.empty_cache()
