"""Paired skill: is the candidate's model worse than the one whose policy runs, on the same windows?

A skill measured on one set of windows depends on those windows as much as on the model (on the
point mass, 64 randomly drawn held-out windows moved one candidate's reward skill by up to 1.9).
Two models measured on the *same* windows share that dependence, so their difference is far
steadier than either skill. The batch's skill at k is a mean over its windows (those with at
least one pair at k):

    skill = 1 − Σ_w e_w / (N · E_base) = mean_w [1 − n · e_w / (N · E_base)]

with ``e_w`` the model's summed absolute error in window ``w``, ``N`` the pairs of all ``n``
windows and ``E_base`` the better baseline's error (floored, as in ``skill``), which depends on the
data only. Each window's term is its share of the skill; the difference of two models' terms per
window is its share of their skill difference, and a percentile bootstrap over the windows
(seeded: the same data give the same interval) gives the interval of the mean difference.
"""

from __future__ import annotations

import numpy as np

from dreamer_core.algorithms.trust.skill import BASELINES, error_floor
from dreamer_core.control.canary import bootstrap_interval

BOOTSTRAP_SAMPLES = 2000


def window_skill(errors: dict, name: str, k: int) -> np.ndarray:
    """Per window with a pair at ``k``, its term of the batch's ``name`` skill at ``k`` (their mean is the
    skill of :func:`dreamer_core.algorithms.trust.skill.skill_curves`); ``errors`` from ``open_loop_errors``."""
    counts = np.asarray(errors["count_windows"][k - 1], dtype=np.float64)
    model = np.asarray(errors[f"{name}_model_windows"][k - 1], dtype=np.float64)[counts > 0]
    base = max(min(errors[f"{name}_{b}"][k - 1] for b in BASELINES), error_floor(errors, name))
    return 1.0 - len(model) * model / (counts.sum() * base)


def paired_skill(candidate: dict, running: dict, name: str, k: int, confidence: float) -> dict[str, float]:
    """The candidate's ``name`` skill at ``k`` minus the running model's, both measured on the same
    windows (``open_loop_errors`` of each; at least one with a pair at ``k``): ``running`` (its skill),
    ``diff`` (the mean difference), ``low`` and ``high`` (the bootstrap interval at ``confidence``) and
    ``windows`` (how many)."""
    if candidate["count_windows"] != running["count_windows"]:
        raise ValueError("a paired comparison needs both models measured on the same windows")
    ours, theirs = window_skill(candidate, name, k), window_skill(running, name, k)
    diff = ours - theirs
    if not len(diff):
        raise ValueError(f"no window has a pair at k={k}: nothing to compare")
    low, high = bootstrap_interval(diff, confidence, BOOTSTRAP_SAMPLES, np.random.default_rng(0))
    return {"running": float(theirs.mean()), "diff": float(diff.mean()), "low": low, "high": high,
            "windows": float(len(diff))}
