"""Roles as data: which kind each role is, the models each benchmark names (E1-E4), and the special values."""

from __future__ import annotations

from pathlib import Path

TINY = "tiny-random"  # built from configs, seeded, no downloads (tests, smoke runs)
REFERENCE = "reference"  # exact stand-ins: ground-truth boxes, full-box masks, answers from a file

# role name -> kind (the module and class that serve it)
ROLE_KINDS = {
    "detector": "detector",
    "segmenter": "segmenter",
    "embedder": "embedder",  # DINOv2 patch features (IPS) or DINO ViT-S/16 CLS (identity)
    "clip": "embedder",  # CLIP ViT-L/14 image and text towers (G-C, L-C, LayoutSAM CLIP, CLIP-I)
    "pick": "embedder",  # PickScore_v1 (a CLIP-H fine-tune) with its own processor
    "vqa": "vqa",
    "face": "face",
    "aesthetic": "aesthetic",
}
REFERENCE_KINDS = ("detector", "segmenter", "vqa")
LOADERS = {  # kind -> "module:function(value, device, hub) -> role object"
    "detector": "ctxgen.vision.detector:load_detector",
    "segmenter": "ctxgen.vision.segmenter:load_segmenter",
    "embedder": "ctxgen.vision.embedder:load_embedder",
    "vqa": "ctxgen.vision.vqa:load_vqa",
    "face": "ctxgen.vision.face:load_face",
    "aesthetic": "ctxgen.vision.aesthetic:load_aesthetic",
}
CLIP_L14 = "openai/clip-vit-large-patch14"
QWEN_VL = "Qwen/Qwen3-VL-8B-Instruct"
AESTHETIC_HOME = Path("~/.cache/ctxgen/aesthetic-sac-logos-ava1-l14").expanduser()  # convert-aesthetic's output

# The models each benchmark's published evaluation uses (E1-E4); EVAL.yaml overrides any of them.
DEFAULTS: dict[str, dict[str, str | dict]] = {
    "lamic": {
        "detector": "IDEA-Research/grounding-dino-base",
        "segmenter": "facebook/sam2.1-hiera-large",
        "embedder": "facebook/dinov2-base",
        "face": "buffalo_l",
        "aesthetic": str(AESTHETIC_HOME),
        "vqa": QWEN_VL,
    },
    "cocomig": {
        "detector": "IDEA-Research/grounding-dino-tiny",  # Grounding DINO SwinT-OGC
        "segmenter": "facebook/sam2.1-hiera-large",  # the original used SAM ViT-H (see docs/eval.md)
        "clip": CLIP_L14,
    },
    "layoutsam": {
        "vqa": QWEN_VL,  # the original used MiniCPM-V-2.6, which needs remote code (see docs/eval.md)
        "clip": CLIP_L14,
        "pick": {"model": "yuvalkirstain/PickScore_v1", "processor": "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"},
    },
    "identity": {
        "embedder": "facebook/dino-vits16",
        "clip": CLIP_L14,
        "detector": "IDEA-Research/grounding-dino-base",
        "segmenter": "facebook/sam2.1-hiera-large",
    },
}


def tiny_defaults(bench: str) -> dict[str, str]:
    """Every role of a benchmark set to `tiny-random` (what `--models tiny-random` means)."""
    return {role: TINY for role in DEFAULTS[bench]}
