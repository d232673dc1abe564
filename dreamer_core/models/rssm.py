"""Recurrent state-space model: deterministic GRU state h and categorical stochastic state z.

State convention (shared with the onboard tick): ``h_t`` is the deterministic state *for*
observation t. Where ``is_first[t]``, ``h_t`` is the learned episode-start state ``tanh(W)``;
otherwise ``h_t = GRU(h_{t−1}, z_{t−1}, a_{t−1})``. The posterior ``z_t`` comes from
``(h_t, embed_t)`` and the prior from ``h_t`` alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dreamer_core.distributions import categorical_sample_st, gumbel_noise, unimix_probs
from dreamer_core.networks import MLP, LayerNormGRUCell, NormLinear


class RSSM(nn.Module):
    """GRU of size ``deter`` with ``stoch`` categoricals of ``classes`` classes each."""

    def __init__(self, act_dim: int, embed_dim: int, deter: int, units: int, stoch: int, classes: int,
                 unimix: float):
        super().__init__()
        self.deter, self.stoch, self.classes, self.unimix = deter, stoch, classes, unimix
        self.act_dim = act_dim
        self.img_in = NormLinear(stoch * classes + act_dim, units)
        self.gru = LayerNormGRUCell(units, deter)
        self.prior_net = MLP(deter, units, 1, stoch * classes)
        self.post_net = MLP(deter + embed_dim, units, 1, stoch * classes)
        # Learned episode-start state, squashed like a GRU state.
        self.h_init = nn.Parameter(torch.zeros(deter))

    @property
    def z_dim(self) -> int:
        return self.stoch * self.classes

    def initial_h(self, batch: int) -> torch.Tensor:
        """Episode-start deterministic state ``tanh(W)`` for ``batch`` sequences."""
        return torch.tanh(self.h_init).expand(batch, self.deter)

    def step(self, h: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One GRU transition (h_t, z_t, a_t) → h_{t+1}."""
        return self.gru(self.img_in(torch.cat([z, action], -1)), h)

    def reset(self, h: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """Replace h by the episode-start state where ``is_first`` (nonzero float or True, shape [B])."""
        return _select_start(h, is_first != 0, self.initial_h(h.shape[0]))

    def _split(self, logits: torch.Tensor) -> torch.Tensor:
        return unimix_probs(logits.unflatten(-1, (self.stoch, self.classes)), self.unimix)

    def prior_probs(self, h: torch.Tensor) -> torch.Tensor:
        """Prior probabilities [..., stoch, classes] given h."""
        return self._split(self.prior_net(h))

    def posterior_probs(self, h: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        """Posterior probabilities [..., stoch, classes] given h and the observation embedding."""
        return self._split(self.post_net(torch.cat([h, embed], -1)))

    def sample(self, probs: torch.Tensor, gumbel: torch.Tensor) -> torch.Tensor:
        """Flat straight-through one-hot sample [..., stoch·classes]; gumbel has probs' shape."""
        return categorical_sample_st(probs, gumbel).flatten(-2)

    def observe(self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor,
                gumbel: torch.Tensor, state: dict | None = None) -> dict[str, torch.Tensor]:
        """Posterior rollout over a real sequence (time-major inputs [T, B, ...]).

        ``action[t]`` is the action taken after observation t, so step t uses ``action[t−1]``.
        Without a carried ``state`` the first step starts an episode. Returns time-major
        ``h``, ``z`` (sampled posterior), ``post`` and ``prior`` probabilities.
        """
        batch = embed.shape[1]
        first = is_first != 0
        if state is None:
            first[0] = True
            h = self.initial_h(batch)
            z = embed.new_zeros(batch, self.z_dim)
            prev_action = embed.new_zeros(batch, self.act_dim)
        else:
            h, z, prev_action = state["h"], state["z"], state["prev_action"]
        # Per-step inputs as views from one unbind each: indexing x[t] in the loop would add a
        # backward node per step that zero-fills a gradient of x's full size.
        actions = (prev_action, *action[:-1].unbind(0))
        hs, zs, posts = [], [], []
        for a, first_t, embed_t, gumbel_t in zip(actions, first.unbind(0), embed.unbind(0), gumbel.unbind(0),
                                                  strict=True):
            # The start state is rebuilt per step (2 ops) so that h_init's gradient is summed in
            # the same order as always: training stays bit-identical to the arithmetic blend.
            h = _select_start(self.step(h, z, a), first_t, self.initial_h(batch))
            post = self.posterior_probs(h, embed_t)
            z = self.sample(post, gumbel_t)
            hs.append(h)
            zs.append(z)
            posts.append(post)
        h_all = torch.stack(hs)
        # The prior does not feed the recurrence, so it is computed for all steps at once.
        return {"h": h_all, "z": torch.stack(zs), "post": torch.stack(posts),
                "prior": self.prior_probs(h_all)}

    def imagine(self, h: torch.Tensor, z: torch.Tensor, policy: Callable, horizon: int,
                generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Prior rollout of ``horizon`` steps from start states [N, ...] under ``policy``.

        ``policy(h, z)`` returns ``(action, info)`` where info is a dict of tensors. Returns
        ``h``, ``z`` of shape [H+1, N, ...] (index 0 = start), ``action`` [H, N, A] and the
        stacked policy infos [H, N, ...].
        """
        hs, zs, actions, infos = [h], [z], [], []
        for _ in range(horizon):
            action, info = policy(h, z)
            h = self.step(h, z, action)
            probs = self.prior_probs(h)
            z = self.sample(probs, gumbel_noise(probs.shape, generator, probs.device))
            hs.append(h)
            zs.append(z)
            actions.append(action)
            infos.append(info)
        out = {"h": torch.stack(hs), "z": torch.stack(zs), "action": torch.stack(actions)}
        for key in infos[0] if infos else ():
            out[key] = torch.stack([info[key] for info in infos])
        return out


def _select_start(h: torch.Tensor, first: torch.Tensor, start_h: torch.Tensor) -> torch.Tensor:
    """``start_h`` in the rows where the bool mask ``first`` [B] is set, ``h`` elsewhere (one op,
    where the arithmetic blend ``first·start + (1−first)·h`` took five, with the same values)."""
    return torch.where(first.unsqueeze(-1), start_h, h)
