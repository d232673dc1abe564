"""Open-loop skill: how much better than simple baselines the model predicts k steps ahead.

From each posterior state (an *anchor*) of a real sequence, the prior is rolled k = 1..K steps
with the logged actions, and its predicted reward and continue probability are compared with
the real ones. A raw error means nothing on its own (a healthy model's error can exceed what a
constant predicts when the reward barely changes), so each is divided by the error of two
baselines on the same pairs:

- **mean**: the mean real reward (continue flag) of the batch;
- **persistence**: the reward (continue flag) at the anchor, repeated.

``skill = 1 − model error / error of the better baseline``: 1 is a perfect model, 0 is no
better than the better baseline, below 0 worse than it. The denominator is floored at
:data:`ERROR_FLOOR_SHARE` of the quantity's scale (the batch's mean |reward|; 1 for the continue
flag), so a target the baselines predict exactly (a constant reward, no episode ends) does not
turn a negligible model error into a huge negative skill.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.distributions import gumbel_noise

ERROR_FLOOR_SHARE = 0.01
BASELINES = ("mean", "persistence")


def posterior(agent: Agent, data: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The agent's posterior rollout over time-major tensors (``h``, ``z``, ``post``, ``prior``)."""
    wm = agent.wm
    shape = (*data["obs"].shape[:2], wm.rssm.stoch, wm.rssm.classes)
    return wm.rssm.observe(wm.encode(data["obs"]), data["action"], data["is_first"],
                           gumbel_noise(shape, generator, agent.device))


@torch.no_grad()
def open_loop_errors(agent: Agent, batch: dict[str, np.ndarray], k_max: int, seed: int = 0) -> dict:
    """Mean absolute errors of the model and of the baselines for k = 1..``k_max``.

    Anchors are the steps 0..T−1−k_max of each sequence that are not an episode's first row
    (whose reward is a placeholder, and whose posterior has seen one observation); a pair is
    left out when an episode starts within its k steps. Returns lists per k: ``k``, ``count``
    (pairs measured), ``reward_model``, ``reward_mean``, ``reward_persistence``,
    ``continue_model``, ``continue_mean``, ``continue_persistence``; per k and window (the batch's
    sequences, in order) ``count_windows`` (pairs) and ``{reward,continue}_model_windows`` (the
    model's summed absolute error, for paired comparisons: ``paired``); and the batch's mean
    ``|reward|`` as ``reward_scale``.
    """
    data = agent.to_tensors(batch)
    steps = data["obs"].shape[0]
    if not 1 <= k_max < steps:
        raise ValueError(f"k_max={k_max} must be in [1, T−1] for sequences of length T={steps}")
    wm, rssm = agent.wm, agent.wm.rssm
    gen = torch.Generator(agent.device).manual_seed(seed)
    post = posterior(agent, data, gen)
    anchors = steps - k_max
    reward, first = data["reward"], data["is_first"]
    cont = 1.0 - data["is_terminal"]
    real_rows = first == 0
    mean_reward, mean_cont = reward[real_rows].mean(), cont[real_rows].mean()
    h, z = post["h"][:anchors].flatten(0, 1), post["z"][:anchors].flatten(0, 1)
    anchor_reward, anchor_cont = reward[:anchors].flatten(0, 1), cont[:anchors].flatten(0, 1)
    valid = 1.0 - first[:anchors].flatten(0, 1)
    out: dict[str, list] = {"k": [], "count": [], "count_windows": [],
                            "reward_scale": float(reward[real_rows].abs().mean())}
    for name in ("reward", "continue"):
        out[f"{name}_model_windows"] = []
        for source in ("model", *BASELINES):
            out[f"{name}_{source}"] = []
    for k in range(1, k_max + 1):
        h = rssm.step(h, z, data["action"][k - 1 : k - 1 + anchors].flatten(0, 1))
        probs = rssm.prior_probs(h)
        z = rssm.sample(probs, gumbel_noise(probs.shape, gen, agent.device))
        target = slice(k, k + anchors)
        valid = valid * (1.0 - first[target].flatten(0, 1))
        real_reward, real_cont = reward[target].flatten(0, 1), cont[target].flatten(0, 1)
        feat = wm.features(h, z)
        count = valid.sum()
        predictions = {
            "reward": {"model": wm.predict_reward(feat), "mean": mean_reward.expand_as(real_reward),
                       "persistence": anchor_reward},
            "continue": {"model": wm.predict_continue(feat), "mean": mean_cont.expand_as(real_cont),
                         "persistence": anchor_cont},
        }
        out["k"].append(k)
        out["count"].append(int(count))
        out["count_windows"].append(valid.view(anchors, -1).sum(0).tolist())
        for name, real in (("reward", real_reward), ("continue", real_cont)):
            for source, predicted in predictions[name].items():
                err = (predicted.float() - real).abs() * valid
                out[f"{name}_{source}"].append(float(err.sum() / count.clamp(min=1)))
                if source == "model":
                    out[f"{name}_model_windows"].append(err.view(anchors, -1).sum(0).tolist())
    return out


def skill(model: Sequence[float], baselines: Sequence[Sequence[float]], floor: float) -> list[float]:
    """Per k: ``1 − model[k] / max(min over baselines of baseline[k], floor)``."""
    best = np.maximum(np.min(np.asarray(baselines, dtype=np.float64), axis=0), floor)
    return [float(v) for v in 1.0 - np.asarray(model, dtype=np.float64) / best]


def error_floor(errors: dict, name: str) -> float:
    """The floor of the baseline error that ``name``'s skill divides by (``reward`` or ``continue``)."""
    # A batch of zero rewards has no scale; 1e-6 keeps the ratio defined.
    return ERROR_FLOOR_SHARE * (max(errors["reward_scale"], 1e-6) if name == "reward" else 1.0)


def skill_curves(errors: dict) -> dict[str, list[float]]:
    """Reward and continue skill per k from :func:`open_loop_errors` output."""
    return {name: skill(errors[f"{name}_model"], [errors[f"{name}_{b}"] for b in BASELINES],
                        error_floor(errors, name))
            for name in ("reward", "continue")}
