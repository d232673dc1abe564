"""An ensemble of cheap one-step heads on the world model's latent: where do they disagree?

``members`` small MLPs each read the (stop-gradient) features of a model state and the action
taken there, and predict what the world model's posterior saw one step later: the reward and the
stochastic state z. They are trained on real posterior states only, each from its own random
initialisation, so they agree where the data is dense and spread apart where it is not. The
world model's own reward head and prior, which predict the same quantities, count as one more
member. Their disagreement along imagined trajectories, relative to that on real held-out data,
says how far imagination has left what the data taught (docs/model_trust.md). They never feed the world model's
gradients nor the exported policy.

All members are evaluated at once with batched matrix products (one op per layer, whatever
the member count).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dreamer_core.transforms import symexp, symlog


class EnsembleHeads(nn.Module):
    """``members`` heads (feat, action) → (symlog reward, z logits), one SiLU hidden layer each."""

    def __init__(self, feat_dim: int, act_dim: int, stoch: int, classes: int, units: int, members: int):
        super().__init__()
        if members < 2:
            raise ValueError(f"an ensemble needs at least 2 members to disagree, got {members}")
        self.members, self.stoch, self.classes = members, stoch, classes
        in_dim, out_dim = feat_dim + act_dim, 1 + stoch * classes
        # nn.Linear's default init, drawn independently per member: the members' spread comes from here.
        # A generator of its own (seeded from the current seed) leaves the global RNG, and so the
        # initialisation of every other network, as it would be without the ensemble.
        gen = torch.Generator().manual_seed(torch.initial_seed() + 1)
        self.w_in = nn.Parameter(_uniform((members, in_dim, units), in_dim, gen))
        self.b_in = nn.Parameter(_uniform((members, 1, units), in_dim, gen))
        self.w_out = nn.Parameter(_uniform((members, units, out_dim), units, gen))
        self.b_out = nn.Parameter(_uniform((members, 1, out_dim), units, gen))

    def forward(self, feat: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions of every member for inputs [..., F] and [..., A]: symlog reward [M, ...]
        and z logits [M, ..., stoch, classes] (float32)."""
        x = torch.cat([feat, action], -1)
        lead = x.shape[:-1]
        x = x.reshape(1, -1, x.shape[-1]).expand(self.members, -1, -1)
        # No LayerNorm (unlike the world model's MLPs): it would map far-away inputs back to the
        # usual activation scale, and the members' different linear extrapolations are the signal.
        hidden = F.silu(torch.baddbmm(self.b_in, x, self.w_in))
        out = torch.baddbmm(self.b_out, hidden, self.w_out).float()
        reward = out[..., 0].reshape(self.members, *lead)
        logits = out[..., 1:].reshape(self.members, *lead, self.stoch, self.classes)
        return reward, logits

    def loss(self, feat: torch.Tensor, action: torch.Tensor, data: dict[str, torch.Tensor],
             post: torch.Tensor) -> torch.Tensor:
        """Per-step loss [T, B] on a time-major real sequence: from (feat_t, action_t) each member
        predicts the reward and the posterior z probabilities (``post``, stop-gradient) of step
        t+1; pairs across an episode start and the last step (no successor) count 0."""
        reward, logits = self(feat[:-1].detach(), action[:-1].detach())
        reward_err = (reward - symlog(data["reward"][1:].float())) ** 2
        target = post[1:].detach().float()
        dyn_err = -(target * F.log_softmax(logits, -1)).sum((-1, -2))
        per_step = (reward_err + dyn_err).mean(0) * (1.0 - data["is_first"][1:].float())
        return torch.cat([per_step, torch.zeros_like(per_step[:1])])

    def disagreement(self, feat: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                     probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Spread of the predictions for the step after inputs [..., F], [..., A], with the world
        model's own prediction of that step (``reward`` [...] and prior ``probs`` [..., stoch,
        classes]) counted as one more member:

        - ``reward``: standard deviation of the predicted rewards (reward units);
        - ``dynamics``: Jensen–Shannon divergence of the predicted z distributions (entropy of
          the mean minus mean entropy), summed over the stochastic groups (nats; 0 when all agree).

        Where the data was dense every head learned the same thing and the spread is small; where
        the model's heads promise what no real transition taught the cheap heads, it is large.
        Differentiable in the inputs (imagination may subtract it from the reward).
        """
        own_reward, logits = self(feat, action)
        rewards = torch.cat([symexp(own_reward), reward.float()[None]])
        members = torch.cat([torch.softmax(logits, -1), probs.float()[None]])
        mean = members.mean(0)
        entropy_of_mean = -(mean * torch.log(mean.clamp_min(1e-8))).sum(-1)
        mean_entropy = -(members * torch.log(members.clamp_min(1e-8))).sum(-1).mean(0)
        return {"reward": rewards.std(0), "dynamics": (entropy_of_mean - mean_entropy).sum(-1)}


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> torch.Tensor:
    bound = 1.0 / math.sqrt(fan_in)
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)
