"""The world model: encoder, RSSM, decoder, reward and continue heads, and the ensemble of
one-step heads that measures where the model is guessing (networks only; the objective that
trains them belongs to the learning algorithms)."""

from __future__ import annotations

import torch
from torch import nn

from dreamer_core.config import AgentConfig
from dreamer_core.distributions import twohot_bins, twohot_decode
from dreamer_core.models.ensemble import EnsembleHeads
from dreamer_core.models.rssm import RSSM
from dreamer_core.networks import MLP
from dreamer_core.transforms import symlog


class WorldModel(nn.Module):
    """Learns dynamics, rewards and episode ends from real sequences (posterior states only)."""

    def __init__(self, obs_dim: int, act_dim: int, config: AgentConfig):
        super().__init__()
        c = config
        self.config = c
        self.obs_dim = obs_dim
        self.encoder = MLP(obs_dim, c.units, c.layers)
        self.rssm = RSSM(act_dim, c.units, c.deter, c.units, c.stoch, c.classes, c.unimix)
        self.feat_dim = c.deter + c.stoch * c.classes
        self.decoder = MLP(self.feat_dim, c.units, c.layers, obs_dim)
        self.reward = MLP(self.feat_dim, c.units, c.layers, c.bins, zero_init_output=True)
        self.cont = MLP(self.feat_dim, c.units, c.layers, 1)
        # Trained on stop-gradient features, so it measures the model without shaping it.
        self.ensemble = EnsembleHeads(self.feat_dim, act_dim, c.stoch, c.classes, c.units, c.ensemble_members)
        self.register_buffer("bins", twohot_bins(c.bins, -c.bin_range, c.bin_range), persistent=False)

    def core_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the trust ensemble's (the model proper)."""
        return [p for name, p in self.named_parameters() if not name.startswith("ensemble.")]

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Embedding of symlog(obs)."""
        return self.encoder(symlog(obs))

    @staticmethod
    def features(h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Model state features concat(h, flat z) consumed by all heads."""
        return torch.cat([h, z], -1)

    def predict_reward(self, feat: torch.Tensor) -> torch.Tensor:
        """Expected reward on arriving in the state with these features."""
        return twohot_decode(self.reward(feat), self.bins)

    def predict_continue(self, feat: torch.Tensor) -> torch.Tensor:
        """Probability that the episode continues from this state."""
        return torch.sigmoid(self.cont(feat).squeeze(-1).float())
