"""λ-returns and the percentile return normaliser of DreamerV3."""

from __future__ import annotations

import torch
from torch import nn


def lambda_return(reward: torch.Tensor, value: torch.Tensor, cont: torch.Tensor, gamma: float,
                  lam: float) -> torch.Tensor:
    """λ-returns R_0..R_{H−1} over states 0..H (time-major, [H+1, ...] inputs).

    ``reward[t]`` is received on entering state t, ``value[t]`` and ``cont[t]`` belong to state t
    (index 0 of reward is unused). ``R_t = r[t+1] + γ c[t+1] ((1−λ) v[t+1] + λ R_{t+1})``, ``R_H = v[H]``.
    """
    disc = gamma * cont[1:]
    # Everything but the recursive term at once; only the λ·R_{t+1} accumulation is sequential.
    base = reward[1:] + disc * (1 - lam) * value[1:]
    ret = value[-1]
    out = []
    for t in reversed(range(len(base))):
        ret = base[t] + disc[t] * lam * ret
        out.append(ret)
    return torch.stack(out[::-1])


class ReturnNormaliser(nn.Module):
    """EMA of the low/high percentiles of λ-returns; scale ``S = max(1, hi − lo)``.

    Dividing advantages by S makes the actor's entropy weight meaningful across reward scales,
    while ``max(1, ·)`` avoids amplifying noise when returns are small.
    """

    def __init__(self, rate: float = 0.01, low: float = 5.0, high: float = 95.0):
        super().__init__()
        self.rate, self.low, self.high = rate, low / 100.0, high / 100.0
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> None:
        """Move the percentile estimates toward those of ``returns`` (any shape)."""
        flat = returns.detach().float().flatten()
        q = torch.quantile(flat, torch.tensor([self.low, self.high], device=flat.device))
        self.lo.mul_(1 - self.rate).add_(self.rate * q[0])
        self.hi.mul_(1 - self.rate).add_(self.rate * q[1])

    @property
    def scale(self) -> torch.Tensor:
        """``max(1, hi − lo)``."""
        return torch.clamp(self.hi - self.lo, min=1.0)
