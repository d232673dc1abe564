"""The promotion rule: measure a candidate on held-out and training windows, then decide.

A candidate is promoted only when every check passes (docs/model_trust.md):

1. enough held-out data: at least ``trust.min_held_out_blocks`` held-out blocks (pieces of episodes);
2. reward and continue **skill** at the candidate's imagination horizon H (the model's k-step
   open-loop error against the better of two baselines, on held-out windows) reach
   ``trust.min_skill``;
3. when a learned model's policy runs (the last promoted version the robot did not reject), the
   candidate's skill is not clearly worse than that model's on the **same** windows: the
   interval (``trust.skill_confidence``) of the mean difference reaches ``-trust.max_skill_drop``
   (``paired``); the first learned candidate (v0, the initial policy, runs) has no such model and
   is judged by 1, 2 and 4 alone;
4. the ensemble **disagreement ratio** along the candidate's own imagination (from held-out
   start states) stays at or below ``trust.max_disagreement_ratio``.

The windows are fixed (every window at ``trust.window_stride``, the newest ``trust.check_sequences``),
and so are the model's random draws (``seed``): the same data and model give the same decision.

Every measure is also taken on training windows; the gap (training minus held-out) is recorded,
not gated. The decision carries every number, the thresholds and one short line of reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dreamer_core.algorithms.agent import Agent
from dreamer_core.algorithms.trust.horizon import skill_horizon
from dreamer_core.algorithms.trust.imagination import DISAGREEMENT_KINDS, imagination_measures
from dreamer_core.algorithms.trust.paired import paired_skill
from dreamer_core.algorithms.trust.skill import open_loop_errors, skill_curves
from dreamer_core.robots.config import TrustConfig

PARTS = ("held_out", "train")


@dataclass
class Measurements:
    """Everything measured about one candidate (per part: ``held_out`` and ``train``)."""

    held_out_blocks: int
    horizon: int  # the imagination horizon the candidate was trained with
    running_version: int | None = None  # the version whose model was measured as "running"; None: none yet
    # part -> open_loop_errors(...); "running": the running model's on the held-out windows
    errors: dict[str, dict] = field(default_factory=dict)
    skill: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # part -> {"reward", "continue"}
    imagination: dict[str, dict[str, float]] = field(default_factory=dict)  # part -> imagination_measures(...)


@dataclass
class TrustReport:
    """The decision on one candidate policy, with every number behind it."""

    passed: bool
    reasons: list[str]
    metrics: dict[str, float]
    curves: dict[str, list[float]]
    thresholds: dict[str, float]
    next_horizon: int  # the imagination horizon to train with from now on

    @property
    def summary(self) -> str:
        """One short line: why it was held back, or what it passed with."""
        if not self.passed:
            return "; ".join(self.reasons)
        m, t = self.metrics, self.thresholds
        if "running_version" in m:
            paired = (f"vs v{m['running_version']:.0f} {m['reward_skill_diff']:+.2f}/{m['continue_skill_diff']:+.2f} "
                      f"({t['skill_confidence']:.0%} high {m['reward_skill_diff_high']:+.2f}/"
                      f"{m['continue_skill_diff_high']:+.2f} >= {-t['max_skill_drop']:g})")
        else:
            paired = "first learned model: floor only"
        return (f"skill {m['reward_skill']:.2f}/{m['continue_skill']:.2f} >= {t['min_skill']:g} "
                f"at k={m['horizon']:.0f}, {paired}, "
                f"disagreement {m['disagreement_ratio']:.2f}x <= {t['max_disagreement_ratio']:g}x")

    def evaluation(self) -> dict[str, float | list[float]]:
        """What a bundle's manifest carries (finite numbers and curves only)."""
        out: dict[str, float | list[float]] = {k: v for k, v in self.metrics.items() if math.isfinite(v)}
        out.update({k: v for k, v in self.curves.items() if all(math.isfinite(x) for x in v)})
        return out


def measure(agent: Agent, held_out: dict[str, np.ndarray], train: dict[str, np.ndarray], trust: TrustConfig,
            held_out_blocks: int, horizon: int, seed: int = 0,
            running: tuple[int, Agent] | None = None) -> Measurements:
    """Skill curves and imagination measures of the agent on a held-out and a training batch, and the
    open-loop errors of ``running`` (version, agent: the model whose policy runs) on the held-out one."""
    m = Measurements(held_out_blocks, horizon)
    for part, batch in (("held_out", held_out), ("train", train)):
        m.errors[part] = open_loop_errors(agent, batch, trust.open_loop_steps, seed)
        m.skill[part] = skill_curves(m.errors[part])
        m.imagination[part] = imagination_measures(agent, batch, horizon, seed)
    if running is not None:
        m.running_version = running[0]
        m.errors["running"] = open_loop_errors(running[1], held_out, trust.open_loop_steps, seed)
    return m


def thresholds_of(trust: TrustConfig) -> dict[str, float]:
    return {"min_held_out_blocks": float(trust.min_held_out_blocks), "min_skill": trust.min_skill,
            "max_skill_drop": trust.max_skill_drop, "skill_confidence": trust.skill_confidence,
            "max_disagreement_ratio": trust.max_disagreement_ratio}


def too_little_data(held_out_blocks: int, trust: TrustConfig, horizon: int) -> TrustReport:
    """The refusal when the held-out data cannot judge a model (nothing else is measured)."""
    reason = f"too little held-out data: {held_out_blocks} blocks < {trust.min_held_out_blocks}"
    return TrustReport(False, [reason], {"held_out_blocks": float(held_out_blocks), "horizon": float(horizon)},
                       {}, thresholds_of(trust), horizon)


def disagreement_ratio(imagination: dict[str, float]) -> float:
    """The gate's ratio: the larger of the reward and dynamics heads' ratios."""
    return max(imagination[f"disagreement_ratio_{kind}"] for kind in DISAGREEMENT_KINDS)


def decide(m: Measurements, trust: TrustConfig, preset_horizon: int) -> TrustReport:
    """Apply the rule of the module docstring; also choose the next imagination horizon."""
    if m.held_out_blocks < trust.min_held_out_blocks:
        return too_little_data(m.held_out_blocks, trust, m.horizon)
    k = m.horizon
    metrics: dict[str, float] = {"held_out_blocks": float(m.held_out_blocks), "horizon": float(k),
                                 "held_out_pairs": float(m.errors["held_out"]["count"][k - 1])}
    curves: dict[str, list[float]] = {}
    for part in PARTS:
        suffix = "" if part == "held_out" else "_train"
        for name in ("reward", "continue"):
            curves[f"skill_{name}{suffix}"] = m.skill[part][name]
            metrics[f"{name}_skill{suffix}"] = m.skill[part][name][k - 1]
        metrics[f"disagreement_ratio{suffix}"] = disagreement_ratio(m.imagination[part])
        metrics.update({f"{key}{suffix}": value for key, value in m.imagination[part].items()})
    for name in ("reward_skill", "continue_skill", "disagreement_ratio"):
        metrics[f"{name}_gap"] = metrics[f"{name}_train"] - metrics[name]
    reasons = []
    if metrics["held_out_pairs"] == 0:
        reasons.append(f"no held-out window spans {k} steps of one episode")
    else:
        for name in ("reward", "continue"):
            value = metrics[f"{name}_skill"]
            if not value >= trust.min_skill:
                reasons.append(f"{name} skill {value:.2f} < {trust.min_skill:g} at k={k}")
        if m.running_version is not None:
            reasons += paired_reasons(m, trust, metrics)
    ratio = metrics["disagreement_ratio"]
    if not ratio <= trust.max_disagreement_ratio:
        reasons.append(f"imagination leaves the data: disagreement {ratio:.2f}x > {trust.max_disagreement_ratio:g}x")
    next_horizon = preset_horizon if trust.horizon == "fixed" else skill_horizon(
        curves["skill_reward"], curves["skill_continue"], trust.min_skill, trust.horizon_min, trust.horizon_max)
    metrics["next_horizon"] = float(next_horizon)
    return TrustReport(not reasons, reasons, metrics, curves, thresholds_of(trust), next_horizon)


def paired_reasons(m: Measurements, trust: TrustConfig, metrics: dict[str, float]) -> list[str]:
    """The paired check against the running model (adds its values to ``metrics``); why it fails, if it does."""
    k, version = m.horizon, m.running_version
    metrics["running_version"] = float(version)
    reasons = []
    for name in ("reward", "continue"):
        paired = paired_skill(m.errors["held_out"], m.errors["running"], name, k, trust.skill_confidence)
        metrics["paired_windows"] = paired["windows"]
        metrics.update({f"{name}_skill_{key}": paired[key] for key in ("running", "diff")})
        metrics.update({f"{name}_skill_diff_{key}": paired[key] for key in ("low", "high")})
        if paired["windows"] < trust.min_held_out_blocks:
            return [f"too few held-out windows to compare with v{version}: {paired['windows']:.0f} < "
                    f"{trust.min_held_out_blocks}"]
        if not paired["high"] >= -trust.max_skill_drop:
            reasons.append(f"{name} skill below v{version}'s: {paired['diff']:+.2f}, "
                           f"{trust.skill_confidence:.0%} high {paired['high']:+.2f} < {-trust.max_skill_drop:g}")
    return reasons
