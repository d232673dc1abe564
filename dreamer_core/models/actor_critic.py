"""Actor (bounded normal over continuous actions) and critic (two-hot over symlog bins)."""

from __future__ import annotations

import torch
from torch import nn

from dreamer_core.distributions import actor_mean_std, twohot_decode
from dreamer_core.networks import MLP


class Actor(nn.Module):
    """Maps model features to the mean tanh(m) and std of a normal over actions in [−1, 1]."""

    def __init__(self, feat_dim: int, act_dim: int, units: int, layers: int, min_std: float,
                 max_std: float, init_zero_mean: bool = False, init_std: float | None = None):
        super().__init__()
        self.net = MLP(feat_dim, units, layers, 2 * act_dim)
        self.min_std, self.max_std = min_std, max_std
        with torch.no_grad():
            out = self.net.out
            if init_zero_mean:
                out.weight[:act_dim] = 0.0
                out.bias[:act_dim] = 0.0
            if init_std is not None:
                # std = (max - min) * sigmoid(s + 2) + min: the bias s that gives init_std everywhere.
                out.weight[act_dim:] = 0.0
                out.bias[act_dim:] = torch.logit(torch.tensor((init_std - min_std) / (max_std - min_std))) - 2.0

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_mean, raw_std = self.net(feat).chunk(2, -1)
        return actor_mean_std(raw_mean, raw_std, self.min_std, self.max_std)


class Critic(nn.Module):
    """Two-hot value distribution over symlog bins; the output layer starts at zero."""

    def __init__(self, feat_dim: int, units: int, layers: int, bins: torch.Tensor):
        super().__init__()
        self.net = MLP(feat_dim, units, layers, len(bins), zero_init_output=True)
        self.register_buffer("bins", bins.clone(), persistent=False)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Logits over the bins."""
        return self.net(feat)

    def value(self, feat: torch.Tensor) -> torch.Tensor:
        """Expected return symexp(Σ p_i b_i)."""
        return twohot_decode(self.net(feat), self.bins)


@torch.no_grad()
def slow_update(slow: nn.Module, fast: nn.Module, fraction: float) -> None:
    """EMA toward the fast network: ``slow ← fraction·fast + (1−fraction)·slow`` for every parameter."""
    for s, f in zip(slow.parameters(), fast.parameters(), strict=True):
        s.lerp_(f, fraction)
