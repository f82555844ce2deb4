"""Training ContextGen adapters (T1-T4, R22-R23): SFT and DPO of a LoRA on FLUX.1-Kontext with the inference stages.

An example (a dataset record) becomes a training composition with the layout and sequence stages; the model call
is the sampling loop's own (`ctxgen.sampling.loop.model_call`); checkpoints are safetensors plus JSON, and every
random draw is keyed by (seed, step, index), so a run resumes bit for bit.
"""
