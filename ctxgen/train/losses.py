"""The training objectives, pure torch in float32: flow matching (T2, R22) and Diffusion-DPO on velocities (T4, R23)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def noisy(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """T2: x_t = (1 − t)·x0 + t·x1, t of shape (1,) or (B,) broadcast over (B, M, 64)."""
    t = t.reshape(-1, 1, 1).to(x0.dtype)  # (B or 1, 1, 1)
    return (1 - t) * x0 + t * x1


def velocity_target(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """T2: the flow-matching target u = x1 − x0."""
    return x1 - x0


def sample_errors(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """(B,): the mean squared error over each sample's main tokens × channels, in float32 (T2, T4's E)."""
    return (v.float() - u.float()).pow(2).mean(dim=(1, 2))


def sft_loss(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """T2 / R22: mean((v̂[:, :M] − (x1 − x0))²), unweighted in t (v already holds only the M main tokens)."""
    return sample_errors(v, u).mean()


@dataclass(frozen=True)
class DpoTerms:
    """The DPO loss and what it is made of (for logs and tests)."""

    loss: torch.Tensor  # scalar
    inside: torch.Tensor  # (P,) the logit: −β/2·((E_w − E_l) − (E_ref,w − E_ref,l))
    accuracy: torch.Tensor  # scalar: share of pairs whose implicit reward prefers the target (inside > 0)
    policy: torch.Tensor  # (2P,) E of the policy: preferred rows first, then rejected
    reference: torch.Tensor  # (2P,) E of the reference


def dpo_loss(v_policy: torch.Tensor, v_reference: torch.Tensor, u: torch.Tensor, beta: float) -> DpoTerms:
    """T4 / R23: −mean log σ(−β/2·((E(v̂_w−u_w) − E(v̂_l−u_l)) − (E(v_ref,w−u_w) − E(v_ref,l−u_l)))), float32.

    Rows 0..P−1 of each (2P, M, 64) input are the preferred samples, rows P..2P−1 the rejected ones (same noise
    and t per pair). At step 0 the policy equals the reference, so the loss is ln 2.
    """
    pairs = v_policy.shape[0] // 2
    e_pol = sample_errors(v_policy, u)  # (2P,)
    e_ref = sample_errors(v_reference.detach(), u)  # (2P,)
    diff_pol = e_pol[:pairs] - e_pol[pairs:]  # (P,)
    diff_ref = e_ref[:pairs] - e_ref[pairs:]  # (P,)
    inside = -0.5 * float(beta) * (diff_pol - diff_ref)  # (P,)
    loss = -F.logsigmoid(inside).mean()
    return DpoTerms(loss, inside.detach(), (inside.detach() > 0).float().mean(), e_pol.detach(), e_ref)
