"""The training config's pydantic models (T1-T4) and the wording of their errors. Torch-free.

pydantic is imported inside `models()`, so importing this module stays cheap. Every section forbids unknown keys;
defaults follow the published training config (T1-T4), the paper's values are one key away.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

METHODS = ("sft", "dpo")
OPTIMIZERS = ("adamw", "adamw8bit", "prodigy")
SCHEDULES = ("constant", "linear", "cosine")
PRECISIONS = ("bf16", "fp32")
PUBLISHED_MIX = {"basic": 15, "composite": 1}  # T2: basic:composite = 15:1


def config_json_schema() -> dict:
    """The JSON Schema of a training config (`ctxgen train schema`)."""
    schema = models().config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ctxgen training config"
    return schema


def _fail(text: str):
    from pydantic_core import PydanticCustomError

    return PydanticCustomError("train", text)


def _check_canvas(v: list[int]) -> list[int]:
    """Training canvas: multiples of 16 (one token, R13) within 64..2048."""
    bad = [f"{n} {x} is not a multiple of 16 within 64..2048" for n, x in zip(("width", "height"), v)
           if not (64 <= x <= 2048 and x % 16 == 0)]
    if bad:
        raise _fail("; ".join(bad))
    return v


def _check_mix(v: dict | None) -> dict | None:
    if v is not None and not any(w > 0 for w in v.values()):
        raise _fail("needs at least one subset with a weight above 0")
    return v


def _types() -> SimpleNamespace:
    """The constrained field types the sections share."""
    from typing import Annotated

    from pydantic import ConfigDict, Field

    return SimpleNamespace(
        Int=Annotated[int, Field(strict=True)], Pos=Annotated[int, Field(strict=True, gt=0)],
        NonNeg=Annotated[int, Field(strict=True, ge=0)], PosF=Annotated[float, Field(gt=0)],
        NonNegF=Annotated[float, Field(ge=0)], Prob=Annotated[float, Field(ge=0, le=1)],
        Text=Annotated[str, Field(strict=True, min_length=1)], Beta=Annotated[float, Field(ge=0, lt=1)],
        Seed=Annotated[int, Field(strict=True, ge=0, lt=2**32)],
        cfg=ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True))


def _input_models(t: SimpleNamespace) -> tuple:
    """`model` and `data`: the base, the initial adapter, and how a record becomes an example (T1, T2)."""
    from typing import Annotated, Literal, Optional

    from pydantic import AfterValidator, BaseModel, Field

    Int, NonNegF, Prob, Text = t.Int, t.NonNegF, t.Prob, t.Text

    class ModelDoc(BaseModel):
        """The frozen base and the adapter training starts from (T1)."""

        model_config = t.cfg
        base: Text = Field("contextgen", description="preset (contextgen, tiny), hub id or diffusers folder")
        init_adapter: Optional[Text] = Field(None, description="DPO: the SFT adapter, fused into the base (T4); "
                                             "SFT: starting weights of the trained LoRA (same rank)")
        quantize: Literal["none", "nf4"] = Field("none", description="nf4: the frozen transformer and T5 in 4 bits "
                                                 "(CUDA + bitsandbytes; the <= 24 GB configuration)")

    class DataDoc(BaseModel):
        """Where examples come from and how one becomes a training input (T2)."""

        model_config = t.cfg
        shards: Text = Field(description="a dataset folder written by `ctxgen dataset` (relative to this file)")
        canvas: Annotated[list[Int], Field(min_length=2, max_length=2), AfterValidator(_check_canvas)] = Field(
            [768, 768], description="training canvas W, H: the target is stretched to it (T2)")
        reference_area: Annotated[int, Field(strict=True, ge=16, le=2048)] = Field(
            512, description="R: each reference is resized to area R^2 (T2: reference_image_width)")
        text_len: Annotated[int, Field(strict=True, ge=1, le=512)] = Field(512, description="T5 tokens T")
        caption_dropout: Prob = Field(0.2, description="probability that the caption becomes \"\" (T2)")
        caption_dropout_subsets: list[Text] = Field(["basic", "complex"],
                                                    description="subsets whose captions may be dropped")
        enhanced_p: Prob = Field(0.5, description="probability of the repainted reference when one exists (T2)")
        face_p: Prob = Field(0.75, description="probability of the aligned face crop for face instances (T2)")
        random_layer_order: bool = Field(True, description="draw the layering randomness per example (T2, R11)")
        box_scale: Literal["height", "axes"] = Field("height", description="height: both box axes scaled by the "
                                                     "height factor (the published quirk); axes: per axis")
        ica: Literal["official", "paper"] = Field("official", description="the ICA mask variant (R16)")
        mix: Annotated[Optional[dict[str, NonNegF]], AfterValidator(_check_mix)] = Field(
            None, description=f"subset weights, e.g. {PUBLISHED_MIX} (published); null: every record alike")
        text_cache: Optional[Text] = Field(None, description="folder of cached text embeddings: filled once, "
                                           "then CLIP and T5 are unloaded")

    return ModelDoc, DataDoc


def _optimisation_models(t: SimpleNamespace) -> tuple:
    """`lora`, `optimizer` and `train` (T1, T3)."""
    from typing import Annotated, Literal, Optional, Union

    from pydantic import BaseModel, Field

    Beta, NonNeg, NonNegF, Pos, PosF, Text = t.Beta, t.NonNeg, t.NonNegF, t.Pos, t.PosF, t.Text

    class LoraDoc(BaseModel):
        """The trained LoRA (T1, R21)."""

        model_config = t.cfg
        rank: Pos = 512
        alpha: Optional[PosF] = Field(None, description="default: the rank (scale 1)")
        init: Literal["gaussian", "kaiming"] = Field("gaussian", description="A's init; B starts at 0")
        targets: Union[Literal["r21"], Annotated[list[Text], Field(min_length=1)]] = Field(
            "r21", description="r21 (the published list) or module names")

    class ProdigyDoc(BaseModel):
        model_config = t.cfg
        use_bias_correction: bool = True
        safeguard_warmup: bool = True
        d_coef: PosF = 1.0

    class OptimizerDoc(BaseModel):
        """AdamW (published), 8-bit AdamW (bitsandbytes, CUDA) or Prodigy (the paper; prodigyopt)."""

        model_config = t.cfg
        name: Literal[OPTIMIZERS] = "adamw"  # type: ignore[valid-type]
        lr: PosF = Field(1e-5, description="learning rate (Prodigy: 1.0)")
        betas: Annotated[list[Beta], Field(min_length=2, max_length=2)] = [0.9, 0.999]
        eps: PosF = 1e-8
        weight_decay: NonNegF = 0.01
        schedule: Literal[SCHEDULES] = "constant"  # type: ignore[valid-type]
        warmup_steps: NonNeg = 0
        prodigy: ProdigyDoc = ProdigyDoc()

    class TSamplingDoc(BaseModel):
        model_config = t.cfg
        mean: float = 0.0
        std: PosF = 1.0

    return LoraDoc, ProdigyDoc, OptimizerDoc, TSamplingDoc, _train_model(t, TSamplingDoc)


def _train_model(t: SimpleNamespace, TSamplingDoc):
    """`train`: the loop (T2, T3)."""
    from typing import Literal, Optional

    from pydantic import BaseModel, Field

    NonNeg, NonNegF, Pos, PosF = t.NonNeg, t.NonNegF, t.Pos, t.PosF

    class TrainDoc(BaseModel):
        """The optimisation loop (T2, T3)."""

        model_config = t.cfg
        max_steps: Pos = Field(5000, description="optimizer steps")
        batch: Pos = Field(16, description="global batch: examples per optimizer step over all processes")
        grad_clip: Optional[PosF] = 0.5
        precision: Literal[PRECISIONS] = Field(  # type: ignore[valid-type]
            "bf16", description="bf16: frozen base in bf16 under autocast, LoRA and optimizer in float32")
        gradient_checkpointing: bool = True
        attention: Literal["sdpa", "flex"] = "sdpa"
        t_sampling: TSamplingDoc = Field(TSamplingDoc(), description="logit-normal t (T2)")
        guidance: NonNegF = Field(1.0, description="embedded guidance during training (T2)")
        device: Literal["auto", "cpu"] = "auto"
        prefetch: Literal["auto", "on", "off"] = Field(
            "auto", description="prepare the next example in a background thread; auto: on a GPU only (on a CPU the "
            "thread competes with training for the same cores)")
        latent_cache_mb: NonNeg = Field(1024, description="CPU memory for the VAE latents of targets and "
                                        "references (they do not change between epochs); 0: off")

    return TrainDoc


def _run_models(t: SimpleNamespace) -> tuple:
    """`dpo`, `checkpoint`, `preview` and `logging`."""
    from typing import Annotated, Literal, Optional

    from pydantic import BaseModel, Field

    NonNeg, NonNegF, Pos, PosF, Seed, Text = t.NonNeg, t.NonNegF, t.Pos, t.PosF, t.Seed, t.Text

    class DpoDoc(BaseModel):
        """Direct Preference Optimization (T4, R23)."""

        model_config = t.cfg
        beta: PosF = 1250.0
        rank: Pos = 256
        alpha: Optional[PosF] = Field(None, description="default: the rank")
        rejected: Literal["layout", "stored"] = Field("layout", description="layout: the auto layout image "
                                                      "(published); stored: the record's `rejected` when it has one")

    class CheckpointDoc(BaseModel):
        model_config = t.cfg
        every: Pos = 200
        keep: Pos = 3
        adapter_dtype: Literal["float32", "bfloat16"] = "float32"

    class PreviewDoc(BaseModel):
        model_config = t.cfg
        every: NonNeg = Field(200, description="render the scenes every N steps (0: never)")
        at_start: bool = True
        scenes: list[Text] = Field([], description="scene files (relative to this file)")
        seeds: Annotated[list[Seed], Field(min_length=1)] = [0]
        steps: Annotated[int, Field(strict=True, ge=1, le=200)] = 28
        guidance: NonNegF = 3.5

    class LoggingDoc(BaseModel):
        model_config = t.cfg
        every: Pos = 1
        tensorboard: Literal["auto", "on", "off"] = "auto"

    return DpoDoc, CheckpointDoc, PreviewDoc, LoggingDoc


@functools.cache
def models() -> SimpleNamespace:
    """The pydantic config models, built on first use so that importing this module stays cheap."""
    from typing import Optional

    from pydantic import BaseModel, Field

    t = _types()
    ModelDoc, DataDoc = _input_models(t)
    LoraDoc, ProdigyDoc, OptimizerDoc, TSamplingDoc, TrainDoc = _optimisation_models(t)
    DpoDoc, CheckpointDoc, PreviewDoc, LoggingDoc = _run_models(t)
    Seed, Text = t.Seed, t.Text

    class ConfigDoc(BaseModel):
        """A ctxgen training config (`ctxgen train sft|dpo CONFIG.yaml`)."""

        model_config = t.cfg
        seed: Seed = 0
        output: Optional[Text] = Field(None, description="run folder (relative to this file); --output wins")
        model: ModelDoc = ModelDoc()
        data: DataDoc
        lora: LoraDoc = LoraDoc()
        optimizer: OptimizerDoc = OptimizerDoc()
        train: TrainDoc = TrainDoc()
        dpo: DpoDoc = DpoDoc()
        checkpoint: CheckpointDoc = CheckpointDoc()
        preview: PreviewDoc = PreviewDoc()
        logging: LoggingDoc = LoggingDoc()

    return SimpleNamespace(config=ConfigDoc)
