"""Does the critic know what a state is worth? Its value against the real return that followed.

From the first posterior state of each real window, the real discounted return is summed along
the window (``Σ γ^(k−1) r_k``) until the window or the episode ends, and closed with ``γ^n`` times
the critic's value of the last state reached (nothing after a terminal step). A calibrated critic
predicts that n-step return on average; a critic far below it (the A1's xs critic at a value of
0.14 where the real return was about 1 230) gives the actor advantages that are mostly noise.
The learner records both numbers at every check (``value/critic``, ``value/real_return``), on
held-out and on training windows.
"""

from __future__ import annotations

import numpy as np
import torch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.algorithms.trust.skill import posterior


@torch.no_grad()
def value_against_real_return(agent: Agent, batch: dict[str, np.ndarray], seed: int = 0) -> dict[str, float]:
    """Mean critic value at the windows' first states and the mean real n-step return that followed
    (``{"critic": ..., "real_return": ...}``); ValueError on a malformed batch (Agent.to_tensors)."""
    data = agent.to_tensors(batch)
    post = posterior(agent, data, torch.Generator(agent.device).manual_seed(seed))
    value = agent.critic.value(agent.wm.features(post["h"], post["z"])).float()
    gamma = agent.config.gamma
    reward, terminal, first = data["reward"], data["is_terminal"], data["is_first"]
    ret = torch.zeros_like(value[0])
    alive = torch.ones_like(ret)  # 1 while the window's first episode goes on
    discount = torch.ones_like(ret)  # γ^(k−1) for reward k, 0 after a terminal step
    bootstrap, weight = value[0].clone(), torch.ones_like(ret)  # last state reached and its γ^n
    for k in range(1, len(reward)):
        alive = alive * (first[k] == 0)
        ret = ret + alive * discount * reward[k]
        discount = discount * gamma * (1.0 - terminal[k])
        bootstrap = torch.where(alive > 0, value[k], bootstrap)
        weight = torch.where(alive > 0, discount, weight)
    return {"critic": float(value[0].mean()), "real_return": float((ret + weight * bootstrap).mean())}
