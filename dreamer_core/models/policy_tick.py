"""One control tick of the policy: the graph the learner exports to ONNX and the robot runs.

Inputs and outputs follow the contract in :mod:`dreamer_core.spec` (``TICK_INPUTS``,
``TICK_OUTPUTS``, shapes from ``PolicyDims``), which the robot checks without torch.
"""

from __future__ import annotations

import torch
from torch import nn

from dreamer_core.models.actor_critic import Actor
from dreamer_core.models.world_model import WorldModel
from dreamer_core.spec import PolicyDims
from dreamer_core.transforms import symlog

# The actor's normalised action box; the robot config's action.clip is validated to equal it.
ACTION_LOW, ACTION_HIGH = -1.0, 1.0


class PolicyTick(nn.Module):
    """Exactly one control tick, sharing the world model's and actor's parameters.

    ``forward(obs[B,O], h[B,D], z[B,S·C], prev_action[B,A], is_first[B], gumbel[B,S·C], eps[B,A])``
    returns ``(action, action_mean, h_next, z_next)``. The carried ``h``, ``z`` are the previous
    tick's state and ``prev_action`` the action the robot executed after it (which the robot may
    have rate-limited or filtered): the tick first makes the GRU step with them, then, where
    ``is_first``, replaces h by the episode-start state, exactly as :meth:`RSSM.observe` does on
    replay. ``h_next``, ``z_next`` are this tick's state, carried to the next tick. The sampled
    action is clamped to the action box [−1, 1], the same box imagination clips to.
    """

    def __init__(self, world_model: WorldModel, actor: Actor):
        super().__init__()
        self.encoder = world_model.encoder
        self.rssm = world_model.rssm
        self.actor = actor
        self.dims = PolicyDims(obs=world_model.obs_dim, act=self.rssm.act_dim, deter=self.rssm.deter,
                               stoch=self.rssm.z_dim)

    def forward(self, obs, h, z, prev_action, is_first, gumbel, eps):
        rssm = self.rssm
        # The class's eager step, never an instance-level torch.compile wrapper: this graph is exported.
        h = rssm.reset(type(rssm).step(rssm, h, z, prev_action), is_first)
        post = rssm.posterior_probs(h, self.encoder(symlog(obs)))
        logits = torch.log(post) + gumbel.reshape(post.shape)
        z_next = nn.functional.one_hot(torch.argmax(logits, -1), rssm.classes).to(h.dtype).flatten(-2)
        mean, std = self.actor(torch.cat([h, z_next], -1))
        action = torch.clamp(mean + std * eps, ACTION_LOW, ACTION_HIGH)
        return action, mean, h, z_next

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Zero tensors of the contract's input shapes (batch 1), on the parameters' device."""
        device = next(self.parameters()).device
        return tuple(torch.zeros(shape, device=device) for shape in self.dims.input_shapes().values())
