"""Model-trust measures on held-out real sequences (DESIGN.md §7), as pure functions of an agent."""

from __future__ import annotations

import numpy as np
import torch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.distributions import gumbel_noise


@torch.no_grad()
def open_loop_errors(agent: Agent, batch: dict[str, np.ndarray], k_max: int, seed: int = 0) -> dict:
    """From every posterior anchor, roll the prior k = 1..k_max steps with the real logged actions and
    compare predicted reward and continue probability with the real ones.

    Returns ``{"k": [1..k_max], "reward_mae": [...], "continue_mae": [...], "count": [...]}``; pairs
    whose k-step window crosses an episode start are left out (``count`` says how many remain).
    """
    data = agent.to_tensors(batch)
    steps = data["obs"].shape[0]
    if not 1 <= k_max < steps:
        raise ValueError(f"k_max={k_max} must be in [1, T−1] for sequences of length T={steps}")
    wm, rssm = agent.wm, agent.wm.rssm
    gen = torch.Generator(agent.device).manual_seed(seed)
    shape = (*data["obs"].shape[:2], rssm.stoch, rssm.classes)
    gumbel = gumbel_noise(shape, gen, agent.device)
    post = rssm.observe(wm.encode(data["obs"]), data["action"], data["is_first"], gumbel)
    anchors = steps - k_max
    h, z = post["h"][:anchors].flatten(0, 1), post["z"][:anchors].flatten(0, 1)
    valid = torch.ones_like(h[:, 0])
    out = {"k": [], "reward_mae": [], "continue_mae": [], "count": []}
    for k in range(1, k_max + 1):
        h = rssm.step(h, z, data["action"][k - 1 : k - 1 + anchors].flatten(0, 1))
        probs = rssm.prior_probs(h)
        z = rssm.sample(probs, gumbel_noise(probs.shape, gen, agent.device))
        target = slice(k, k + anchors)
        valid = valid * (1 - data["is_first"][target].flatten(0, 1))
        feat = wm.features(h, z)
        reward_err = (wm.predict_reward(feat) - data["reward"][target].flatten(0, 1)).abs()
        cont_err = (wm.predict_continue(feat) - (1 - data["is_terminal"][target].flatten(0, 1))).abs()
        count = valid.sum()
        out["k"].append(k)
        out["count"].append(int(count))
        out["reward_mae"].append(float((reward_err * valid).sum() / count.clamp(min=1)))
        out["continue_mae"].append(float((cont_err * valid).sum() / count.clamp(min=1)))
    return out


def horizon_sensitivity(agent: Agent, batch: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean imagined λ-return and normalised actor advantage with the configured horizon H and H/2.

    A policy whose advantage vanishes at H/2 is feeding on long-horizon model bias.
    """
    horizon = agent.config.horizon
    full, half = agent.imagine_returns(batch, horizon), agent.imagine_returns(batch, max(1, horizon // 2))
    return {"horizon": horizon, "return_H": full["return"], "return_H2": half["return"],
            "advantage_H": full["advantage"], "advantage_H2": half["advantage"]}
