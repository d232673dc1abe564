"""The promotion gate on the 2-D point mass, with the robot config's default trust and canary thresholds
(the same for every candidate and every robot; no tuning here): a healthy agent passes; a model trained
on too little data and one with flipped dynamics are held back by the gate; one with a reward bonus
planted where no real state can be is held back by the gate or the robot's canary, and the canary
rejects it whatever the gate decided. Each refused candidate really does worse than the healthy one on
real (seeded) episodes. The gate measures fixed windows (no draw), so each candidate's decision is the
same when measured again; the healthy agent is judged as the first learned candidate (the floor), the
others against it as the running model (the paired check, docs/model_trust.md#paired-check).

Measured for the planted bonus (seed 0, docs/model_trust.md#planted-bonus): the gate holds it back on
its reward skill (-1.48 < -0.7), not on the ensemble's disagreement ratio (1.08 < 1.25); the canary's 5
episodes average -14.5 against a threshold of -12.5 from the healthy agent's 20 (mean -8.2, std 3.1);
over 8 disjoint sets of 5 start states the candidate's means were -12.7 to -14.6, all below it; its
real return is -13.4 against the healthy -10.3. Every figure is seeded, so the same on every run.

Candidates and held-out data: tests/unit/point_mass_candidates.py (the healthy run is the shared
``point_mass_run`` fixture of the learning test). Measured numbers: docs/model_trust.md.
"""

from __future__ import annotations

import numpy as np
import pytest
from point_mass_candidates import real_episodes, real_return

from dreamer_core.algorithms.trust import decide, measure
from dreamer_core.control.canary import FAILED, judge
from dreamer_core.robots.config import TrustConfig, load_robot_config
from dreamer_core.runners.learner import check_length

# The candidates' training (shared fixtures) can take over 10 minutes at load average 20: more room
# than the suite-wide 600 s hang limit.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

# Held back, and by which check (the reason's start).
REFUSED = {
    "little_data": "reward skill",
    "flipped_dynamics": "",  # by skill or by disagreement, whichever trips first
}
# Start states of the canary's real episodes and of its baseline's (the healthy agent's), apart from
# each other and from real_return's.
CANARY_SEED, BASELINE_SEED = 3000, 2000


@pytest.fixture(scope="module")
def judged(point_mass_run):
    trust = TrustConfig()
    assert load_robot_config("a1_sim").trust == trust  # the shipped robot config uses the defaults too
    agent = point_mass_run.healthy
    length = check_length(trust, agent.config)
    held_out = point_mass_run.held_out.windows(length, trust.window_stride, trust.check_sequences)
    train = point_mass_run.replay.windows(length, trust.window_stride, trust.check_sequences)
    out = {}
    for name in ("healthy", *REFUSED, "planted_bonus"):
        candidate = point_mass_run.candidate(name)
        # The healthy agent is the first learned candidate; once promoted (v1), the others are compared with it.
        running = None if name == "healthy" else (1, agent)
        measured = measure(candidate, held_out, train, trust, point_mass_run.held_out_episodes, candidate.horizon,
                           running=running)
        out[name] = (decide(measured, trust, candidate.config.horizon), real_return(candidate))
        again = measure(candidate, held_out, train, trust, point_mass_run.held_out_episodes, candidate.horizon,
                        running=running)
        assert decide(again, trust, candidate.config.horizon).metrics == out[name][0].metrics  # repeatable
    return out


def test_the_healthy_agent_is_promoted_with_its_curves(judged):
    report, _ = judged["healthy"]
    assert report.passed, report.summary
    evaluation = report.evaluation()  # what the bundle's manifest carries for the robot
    k = TrustConfig().open_loop_steps
    assert isinstance(evaluation["imagined_reward_per_step"], float)
    for key in ("skill_reward", "skill_continue", "skill_reward_train"):
        assert len(evaluation[key]) == k and all(isinstance(v, float) for v in evaluation[key])
    assert report.metrics["reward_skill"] == evaluation["skill_reward"][int(report.metrics["horizon"]) - 1]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_bad_candidate_is_held_back_and_really_does_worse(judged, name):
    report, real = judged[name]
    assert not report.passed
    assert any(reason.startswith(REFUSED[name]) for reason in report.reasons), report.summary
    healthy_real = judged["healthy"][1]
    assert real < healthy_real, f"{name}: real return {real:.1f}, healthy {healthy_real:.1f}"


def test_a_planted_bonus_is_held_back_by_the_gate_or_the_canary_and_really_does_worse(judged, point_mass_run):
    """The robot's canary as the control node runs it (robot-config defaults: 5 canary episodes against
    20 of the previous version, here the healthy agent), on real per-episode returns."""
    report, real = judged["planted_bonus"]
    canary = load_robot_config("a1_sim").canary
    verdict = judge(2, real_episodes(point_mass_run.candidate("planted_bonus"), canary.episodes, CANARY_SEED),
                    1, real_episodes(point_mass_run.healthy, canary.baseline_episodes, BASELINE_SEED),
                    report.metrics["imagined_reward_per_step"], canary, np.random.default_rng(0))
    # Held back by the gate, or promoted and then rolled back by the canary; the canary is the robot's
    # guarantee either way, so it must reject the candidate whatever the gate decided.
    assert not report.passed or not verdict.passed
    assert not verdict.passed, f"gate: {report.summary}; canary: {verdict.reason}"
    assert verdict.values["return_check"] == FAILED, verdict.reason  # its real episodes, not only its promise
    healthy_real = judged["healthy"][1]
    assert real < healthy_real, f"planted bonus: real return {real:.1f}, healthy {healthy_real:.1f}"
