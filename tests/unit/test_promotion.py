"""Model trust and promotion (docs/architecture.md#model-trust): the gate measured on a real model and
decided by the robot config's thresholds; over-optimism from real rewards per policy version."""

from __future__ import annotations

import numpy as np
import pytest
from learner_helpers import random_batch, tiny_agent

from dreamer_core.algorithms.promotion import (
    MIN_STEPS_FOR_OVER_OPTIMISM,
    decide,
    evaluate_trust,
    over_optimism,
    real_reward_by_version,
)
from dreamer_core.robots.config import TrustConfig
from dreamer_core.storage import ReplayStore, Transition

K = 3


def errors(reward=0.1, cont=0.05, count=10):
    return {"reward_mae": [reward] * K, "continue_mae": [cont] * K, "count": [count] * K}


HORIZON = {"advantage_H": 0.2, "advantage_H2": 0.15, "return_H": 1.0, "return_H2": 0.6}


def test_passes_within_thresholds():
    report = decide(errors(), HORIZON, TrustConfig(open_loop_steps=K))
    assert report.passed and report.reasons == []
    assert report.metrics["open_loop_reward_error_k3"] == pytest.approx(0.1)
    assert report.metrics["advantage_H2"] == 0.15


@pytest.mark.parametrize(
    ("errs", "horizon", "config", "reason"),
    [
        (errors(reward=2.5), HORIZON, {"max_reward_error": 2.0}, "open-loop reward error after 3 steps 2.500"),
        (errors(cont=0.6), HORIZON, {"max_continue_error": 0.5}, "open-loop continue error"),
        (errors(count=0), HORIZON, {}, "no real sequence spans 3 steps"),
        (errors(), {**HORIZON, "advantage_H2": -0.01}, {}, "vanishes at H/2"),
        (errors(), {**HORIZON, "advantage_H2": 0.04}, {"min_horizon_retention": 0.25}, "vanishes at H/2"),
    ],
)
def test_each_failed_check_refuses_with_its_reason(errs, horizon, config, reason):
    report = decide(errs, horizon, TrustConfig(open_loop_steps=K, **config))
    assert not report.passed
    assert len(report.reasons) == 1 and reason in report.reasons[0]


def test_no_improvement_is_not_a_horizon_failure():
    report = decide(errors(), {**HORIZON, "advantage_H": -0.1, "advantage_H2": -0.3}, TrustConfig(open_loop_steps=K))
    assert report.passed


def test_measured_on_a_real_model():
    agent = tiny_agent()
    batch = random_batch(length=16)
    report = evaluate_trust(agent, batch, TrustConfig(open_loop_steps=K))
    for key in ("open_loop_reward_error_k1", "open_loop_continue_error_k3", "advantage_H", "advantage_H2"):
        assert np.isfinite(report.metrics[key])
    # Random rewards of unit scale: the untrained model's error is far above a strict threshold.
    strict = evaluate_trust(agent, batch, TrustConfig(open_loop_steps=K, max_reward_error=0.01))
    assert not strict.passed and "reward error" in strict.reasons[0]


def test_real_reward_by_version(tmp_path):
    obs_dim, act_dim = 3, 2
    with ReplayStore(tmp_path / "replay", obs_dim=obs_dim, act_dim=act_dim) as store:
        for seq in range(30):
            store.add(Transition(robot_id="a1", session_id="s", seq=seq, obs=np.zeros(obs_dim, np.float32),
                                 action=np.zeros(act_dim, np.float32), reward=100.0 if seq == 0 else seq % 3,
                                 is_first=seq == 0, is_last=False, is_terminal=False,
                                 policy_version=1 if seq < 10 else 2))
        result = real_reward_by_version(store)
    assert result[1] == (pytest.approx(sum(s % 3 for s in range(1, 10)) / 9), 9)  # the is_first step is left out
    assert result[2] == (pytest.approx(sum(s % 3 for s in range(10, 30)) / 20), 20)


def test_over_optimism_uses_the_newest_version_with_enough_real_steps():
    enough = MIN_STEPS_FOR_OVER_OPTIMISM
    predicted = {1: 0.9, 2: 1.5, 3: 2.0}
    real = {1: (0.4, enough * 3), 2: (0.5, enough), 3: (0.1, enough - 1)}  # v3 has too little data yet
    assert over_optimism(predicted, real) == {"over_optimism": pytest.approx(1.0), "over_optimism_version": 2.0,
                                              "real_reward_per_step": 0.5, "imagined_reward_per_step": 1.5}
    assert over_optimism(predicted, {3: (0.1, enough - 1)}) == {}
    assert over_optimism({}, real) == {}
