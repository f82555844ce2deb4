"""Stages 4-5, sampling: conditioning (prompt, VAE context), per-block CLA/ICA processors, FlexAttention, the
flow-matching loop and the Renderer that ties them to a loaded model (R13-R20). Imports torch and diffusers.
"""
