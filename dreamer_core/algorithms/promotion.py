"""Model trust and promotion: may a candidate policy go to the robot, and did the last one deliver?

Everything the learner measures about its model before and after a policy runs, as pure
functions of an agent, a batch of real sequences and numbers:

- trust measures on real sequences: :func:`open_loop_errors` (the prior rolled k steps with the
  logged actions against the real rewards and episode ends) and :func:`horizon_sensitivity`
  (does the imagined improvement survive a shorter horizon?);
- the promotion rule :func:`decide` (with :func:`evaluate_trust` measuring then deciding) against
  the robot config's ``trust`` thresholds, with a human-readable reason per failed check;
- over-optimism (:func:`over_optimism`): the model's imagined reward per step for a deployed
  version against what the robot then collected with it. Reported, not gated.

The real sequences are sampled from the replay store the model trains on (recency-biased, so
the newest and least-trained-on data dominate); robot data is too scarce to hold a split back.
See docs/architecture.md#model-trust.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.distributions import gumbel_noise
from dreamer_core.robots.config import TrustConfig

# Real steps of a policy version before its over-optimism is reported (noise below that).
MIN_STEPS_FOR_OVER_OPTIMISM = 200


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


@dataclass
class TrustReport:
    """The decision on one candidate policy, with every number behind it."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def evaluate_trust(agent, batch: dict[str, np.ndarray], thresholds: TrustConfig) -> TrustReport:
    """Measure trust on a real `batch` and decide with `thresholds`."""
    errors = open_loop_errors(agent, batch, thresholds.open_loop_steps)
    horizon = {key: float(v) for key, v in horizon_sensitivity(agent, batch).items()}
    return decide(errors, horizon, thresholds)


def decide(errors: dict, horizon: dict[str, float], thresholds: TrustConfig) -> TrustReport:
    """The promotion rule on measured numbers (`open_loop_errors`, `horizon_sensitivity` outputs)."""
    k = thresholds.open_loop_steps
    metrics: dict[str, float] = {}
    for i in sorted({1, max(1, k // 2), k}):
        metrics[f"open_loop_reward_error_k{i}"] = float(errors["reward_mae"][i - 1])
        metrics[f"open_loop_continue_error_k{i}"] = float(errors["continue_mae"][i - 1])
    metrics.update(horizon)
    reasons = []
    if errors["count"][k - 1] == 0:
        reasons.append(f"no real sequence spans {k} steps without an episode start: cannot check the model")
    else:
        reward_err, cont_err = errors["reward_mae"][k - 1], errors["continue_mae"][k - 1]
        if reward_err > thresholds.max_reward_error:
            reasons.append(f"open-loop reward error after {k} steps {reward_err:.3f} > {thresholds.max_reward_error}")
        if cont_err > thresholds.max_continue_error:
            reasons.append(
                f"open-loop continue error after {k} steps {cont_err:.3f} > {thresholds.max_continue_error}"
            )
    adv_h, adv_h2 = horizon["advantage_H"], horizon["advantage_H2"]
    if adv_h > 0 and adv_h2 < thresholds.min_horizon_retention * adv_h:
        reasons.append(f"imagined improvement vanishes at H/2 (advantage {adv_h2:.4f} at H/2 vs {adv_h:.4f} at H)")
    return TrustReport(passed=not reasons, reasons=reasons, metrics=metrics)


def real_reward_by_version(store) -> dict[int, tuple[float, int]]:
    """Mean real reward per step (episode starts excluded) and step count, per policy version,
    over every step of a replay store."""
    sums: dict[int, list[float]] = {}
    for _, cols in store.iter_steps():
        keep = ~cols["is_first"]
        versions, rewards = cols["policy_version"][keep], cols["reward"][keep]
        for version in np.unique(versions):
            acc = sums.setdefault(int(version), [0.0, 0])
            chosen = rewards[versions == version]
            acc[0] += float(chosen.sum())
            acc[1] += len(chosen)
    return {v: (total / count, count) for v, (total, count) in sums.items()}


def over_optimism(predicted: Mapping[int, float], real: Mapping[int, tuple[float, int]]) -> dict[str, float]:
    """Imagined minus real mean reward per step, for the newest version in ``predicted`` (imagined
    reward per step when it was promoted) that has at least :data:`MIN_STEPS_FOR_OVER_OPTIMISM`
    real steps in ``real`` (:func:`real_reward_by_version`); empty when none has.

    Reported (TensorBoard, promotion log), not gated: it can only be measured after a policy has
    run on the robot, so gating on it would block every later candidate.
    """
    for version in sorted(predicted, reverse=True):
        mean, steps = real.get(version, (0.0, 0))
        if steps >= MIN_STEPS_FOR_OVER_OPTIMISM:
            return {"over_optimism": predicted[version] - mean, "over_optimism_version": float(version),
                    "real_reward_per_step": mean, "imagined_reward_per_step": predicted[version]}
    return {}
