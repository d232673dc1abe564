"""Every DreamerV3 loss as a short pure function on tensors (per-element; callers average).

World-model terms are time-major [T, B]; behaviour terms are over imagined states [H, N].
"""

from __future__ import annotations

import torch

from dreamer_core.distributions import (
    bernoulli_loss,
    categorical_kl,
    free_bits,
    normal_entropy,
    twohot_loss,
)
from dreamer_core.transforms import symlog


def decoder_loss(pred: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """MSE between the decoder output and symlog(obs), summed over observation dims."""
    return ((pred.float() - symlog(obs)) ** 2).sum(-1)


def reward_loss(logits: torch.Tensor, reward: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Two-hot cross-entropy of the reward head against the real reward."""
    return twohot_loss(logits, reward, bins)


def continue_loss(logits: torch.Tensor, is_terminal: torch.Tensor) -> torch.Tensor:
    """Bernoulli NLL of the continue head against ``1 − is_terminal``."""
    return bernoulli_loss(logits.squeeze(-1), 1.0 - is_terminal.float())


def kl_losses(post: torch.Tensor, prior: torch.Tensor, free: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamics ``KL(sg(post)‖prior)`` and representation ``KL(post‖sg(prior))`` losses, each summed
    over the latents and clipped below at ``free`` nats (free bits)."""
    dyn = categorical_kl(post.detach(), prior).sum(-1)
    rep = categorical_kl(post, prior.detach()).sum(-1)
    return free_bits(dyn, free), free_bits(rep, free)


def actor_loss(ret: torch.Tensor, baseline: torch.Tensor, std: torch.Tensor, scale: torch.Tensor,
               entropy_scale: float) -> torch.Tensor:
    """Dynamics-backprop actor loss ``−(R − v)/max(1,S) − η·H[π]``; R keeps its gradient path
    through the imagined states, the baseline is a constant."""
    advantage = (ret - baseline.detach()) / scale
    return -advantage - entropy_scale * normal_entropy(std)


def critic_loss(logits: torch.Tensor, ret: torch.Tensor, slow_value: torch.Tensor, bins: torch.Tensor,
                slow_reg: float) -> torch.Tensor:
    """Two-hot regression onto the λ-return plus a pull toward the slow critic's prediction."""
    return twohot_loss(logits, ret.detach(), bins) + slow_reg * twohot_loss(logits, slow_value.detach(), bins)
