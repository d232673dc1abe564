"""The LayerNorm GRU cell of DreamerV3 (one fused linear, LayerNorm, update-gate bias −1)."""

from __future__ import annotations

import torch
from torch import nn

from dreamer_core.networks.mlp import LN_EPS


class LayerNormGRUCell(nn.Module):
    """GRU cell whose three gate pre-activations come from one Linear over [input, h] and a LayerNorm.

    The update gate is offset by −1 so that a fresh network mostly keeps its state, which
    stabilises long posterior rollouts early in training.
    """

    def __init__(self, input_dim: int, hidden_dim: int, update_bias: float = -1.0):
        super().__init__()
        self.linear = nn.Linear(input_dim + hidden_dim, 3 * hidden_dim, bias=False)
        self.norm = nn.LayerNorm(3 * hidden_dim, eps=LN_EPS)
        self.update_bias = update_bias

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        parts = self.norm(self.linear(torch.cat([x, h], -1)))
        reset, cand, update = parts.chunk(3, -1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update + self.update_bias)
        return update * cand + (1 - update) * h
