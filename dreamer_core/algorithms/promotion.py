"""The promotion gate: may a candidate policy go to the robot? (DESIGN.md §7)

Combines the trust measures of `dreamer_core.algorithms.trust` with the robot
config's `trust` thresholds into a decision with human-readable reasons; every
decision is logged by the learner, promoted or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dreamer_core.algorithms.trust import horizon_sensitivity, open_loop_errors
from dreamer_core.robots.config import TrustConfig


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
