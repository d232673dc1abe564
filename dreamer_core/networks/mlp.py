"""Multi-layer perceptrons in DreamerV3 style: Linear → LayerNorm(eps 1e-3) → SiLU per hidden layer."""

from __future__ import annotations

import itertools

import torch
from torch import nn

LN_EPS = 1e-3


class NormLinear(nn.Module):
    """One hidden layer: Linear (no bias, LayerNorm has one) → LayerNorm → SiLU."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        self.norm = nn.LayerNorm(out_dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.silu(self.norm(self.linear(x)))


class MLP(nn.Module):
    """``layers`` NormLinear blocks of width ``units``, then an optional linear output layer.

    ``zero_init_output`` zeroes the output layer, as DreamerV3 does for the reward and critic
    heads so that early predictions are 0 and do not drive large early updates.
    """

    def __init__(self, in_dim: int, units: int, layers: int, out_dim: int | None = None,
                 zero_init_output: bool = False):
        super().__init__()
        dims = [in_dim] + [units] * layers
        self.hidden = nn.Sequential(*(NormLinear(a, b) for a, b in itertools.pairwise(dims)))
        self.out = nn.Linear(dims[-1], out_dim) if out_dim is not None else None
        if self.out is not None and zero_init_output:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.out_dim = out_dim if out_dim is not None else dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden(x)
        return self.out(x) if self.out is not None else x
