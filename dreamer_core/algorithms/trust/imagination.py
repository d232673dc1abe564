"""What the candidate policy does in imagination, measured from real start states.

The open-loop skill replays the *logged* actions, so a policy that steers into states the data
never visited (where the model may promise anything) is invisible to it. Here the candidate
itself acts: from every posterior state of real sequences, its imagined trajectory of H steps
is rolled with the prior, and

- the ensemble heads' disagreement (the world model's own reward head and prior counted as one
  more member) along it is compared with their disagreement on the real (state, logged action)
  pairs of the same sequences: the **disagreement ratio**; near 1 the policy stays where the
  data taught the model, well above 1 it feeds on predictions no real transition backs;
- the model's predicted reward per step from real episode-start states is what the model
  promises for the policy, held against the real reward once it has run (over-optimism) and
  sent to the robot in the bundle for its canary.

Imagined steps after a predicted episode end do not count (as in the actor's loss).
"""

from __future__ import annotations

import numpy as np
import torch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.algorithms.trust.skill import posterior

DISAGREEMENT_KINDS = ("reward", "dynamics")


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> float:
    return float((values * weight).sum() / weight.sum().clamp(min=1e-8))


@torch.no_grad()
def imagination_measures(agent: Agent, batch: dict[str, np.ndarray], horizon: int, seed: int = 0) -> dict[str, float]:
    """Disagreement on real pairs and along the candidate's imagination, their ratios, and the
    imagined reward per step from real episode starts.

    Keys: ``disagreement_{reward,dynamics}_real``, ``disagreement_{reward,dynamics}_imagined``,
    ``disagreement_ratio_{reward,dynamics}`` (imagined / real) and ``imagined_reward_per_step``
    (from the rows where an episode starts inside a sequence; from every row when none does),
    plus ``episode_starts`` (how many start states that was).
    """
    data = agent.to_tensors(batch)
    gen = torch.Generator(agent.device).manual_seed(seed)
    wm = agent.wm
    post = posterior(agent, data, gen)
    feat = wm.features(post["h"], post["z"])
    real_pairs = 1.0 - data["is_first"][1:]
    real = wm.ensemble.disagreement(feat[:-1], data["action"][:-1], wm.predict_reward(feat[1:]), post["prior"][1:])
    traj = agent._imagine(post["h"].flatten(0, 1), post["z"].flatten(0, 1), horizon, gen)
    # Weight of imagined step i: every state up to i continued (state 0 is a real, live state).
    cont = (wm.predict_continue(traj["feat"][1:]) > 0.5).float()
    alive = torch.cat([torch.ones_like(cont[:1]), torch.cumprod(cont, 0)[:-1]])
    reward = wm.predict_reward(traj["feat"][1:])
    imagined = wm.ensemble.disagreement(traj["feat"][:-1], traj["action"], reward,
                                        wm.rssm.prior_probs(traj["h"][1:]))
    out: dict[str, float] = {}
    for kind in DISAGREEMENT_KINDS:
        on_real = _weighted_mean(real[kind], real_pairs)
        on_imagined = _weighted_mean(imagined[kind], alive)
        out[f"disagreement_{kind}_real"] = on_real
        out[f"disagreement_{kind}_imagined"] = on_imagined
        out[f"disagreement_ratio_{kind}"] = on_imagined / max(on_real, 1e-8)
    starts = data["is_first"].clone()
    starts[0] = 0.0  # every sequence's first row is marked; only starts inside a sequence are real ones
    starts = starts.flatten(0, 1)
    if starts.sum() == 0:
        starts = torch.ones_like(starts)
    out["imagined_reward_per_step"] = _weighted_mean(reward, alive * starts)
    out["episode_starts"] = float(starts.sum())
    return out
