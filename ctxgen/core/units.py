"""The sizes every stage agrees on (R13). Torch-free."""

from __future__ import annotations

VAE_FACTOR = 8  # the FLUX VAE downsamples 8x per side
PACK = 2  # latents are packed 2x2 into one token
TOKEN = VAE_FACTOR * PACK  # 16 pixels per token side

