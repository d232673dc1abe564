"""Model trust on hand-made numbers: skill against the baselines, the horizon rule, each reason of the
promotion rule, over-optimism from real episodes, and the robot config's trust section."""

from __future__ import annotations

import numpy as np
import pytest

from dreamer_core.algorithms.trust import Measurements, decide, over_optimism, real_reward_by_version
from dreamer_core.algorithms.trust.horizon import skill_horizon
from dreamer_core.algorithms.trust.optimism import MIN_STEPS_FOR_OVER_OPTIMISM
from dreamer_core.algorithms.trust.skill import skill, skill_curves
from dreamer_core.robots.config import ConfigError, TrustConfig, parse_robot_config
from dreamer_core.storage import ReplayStore, Transition

K = 4


def test_skill_is_measured_against_the_better_baseline():
    model = [0.30, 0.30, 0.30, 0.30]
    mean = [0.90, 0.90, 0.90, 0.90]
    persistence = [0.05, 0.20, 0.40, 0.60]  # exact at first, worse than the mean never
    assert skill(model, [mean, persistence], floor=0.0) == pytest.approx([1 - 0.30 / 0.05, 1 - 0.30 / 0.20,
                                                                          1 - 0.30 / 0.40, 1 - 0.30 / 0.60])
    # A model no better than the batch mean has no skill, however small its raw error.
    assert skill([0.01], [[0.01], [0.5]], floor=0.0) == [0.0]
    # A target the baselines predict exactly: the floor keeps a negligible model error from
    # turning into a huge negative skill.
    assert skill([0.002], [[0.0], [0.0]], floor=0.01) == [pytest.approx(0.8)]


def test_skill_curves_floor_each_quantity_by_its_scale():
    errors = {"reward_model": [0.1, 0.2], "reward_mean": [0.4, 0.4], "reward_persistence": [0.2, 0.5],
              "continue_model": [0.004, 0.02], "continue_mean": [0.0, 0.0], "continue_persistence": [0.0, 0.0],
              "reward_scale": 1.0}
    curves = skill_curves(errors)
    assert curves["reward"] == pytest.approx([0.5, 0.5])
    assert curves["continue"] == pytest.approx([0.6, -1.0])  # floored at 0.01 (no episode ends)


@pytest.mark.parametrize(
    ("reward", "cont", "h_max", "expected"),
    [
        ([-2.0, -0.5, 0.2, 0.3, 0.25, 0.1], [0.9] * 6, 6, 5),  # rises through the floor, below again after k=5
        ([0.5, 0.4, 0.3, 0.15, 0.1, 0.0], [0.9] * 6, 6, 3),  # the MBPO shape: error growth
        ([0.5] * 6, [0.9, 0.9, 0.9, 0.1, 0.9, 0.9], 6, 6),  # the last k where both reach it
        ([0.5] * 6, [0.9] * 6, 4, 4),  # clipped to h_max
        ([-1.0] * 6, [0.9] * 6, 6, 2),  # never reached: h_min
        ([0.5, 0.4, float("nan"), 0.1, 0.1, 0.1], [0.9] * 6, 6, 2),  # NaN never counts
    ],
)
def test_horizon_is_the_last_k_whose_skill_reaches_the_floor(reward, cont, h_max, expected):
    assert skill_horizon(reward, cont, floor=0.2, h_min=2, h_max=h_max) == expected


def measured(reward_skill=0.5, continue_skill=0.5, ratio=1.2, blocks=10, pairs=100, horizon=3) -> Measurements:
    def part(r, c, q):
        return ({"count": [pairs] * K}, {"reward": [r] * K, "continue": [c] * K},
                {"disagreement_ratio_reward": q, "disagreement_ratio_dynamics": q / 2, "imagined_reward_per_step": 0.3})
    m = Measurements(blocks, horizon)
    for name, (errors, curves, imagination) in (("held_out", part(reward_skill, continue_skill, ratio)),
                                                ("train", part(0.7, 0.7, 1.0))):
        m.errors[name], m.skill[name], m.imagination[name] = errors, curves, imagination
    return m


TRUST = TrustConfig(open_loop_steps=K, min_skill=0.1, max_disagreement_ratio=2.0, horizon_min=2, horizon_max=4,
                    min_held_out_blocks=4)


def test_a_candidate_within_every_threshold_is_promoted_with_its_numbers():
    report = decide(measured(), TRUST, preset_horizon=3)
    assert report.passed and report.reasons == []
    assert report.metrics["reward_skill"] == 0.5 and report.metrics["reward_skill_gap"] == pytest.approx(0.2)
    assert report.metrics["disagreement_ratio"] == 1.2
    assert report.metrics["disagreement_ratio_gap"] == pytest.approx(-0.2)
    assert report.curves["skill_reward"] == [0.5] * K and report.curves["skill_continue_train"] == [0.7] * K
    assert report.thresholds == {"min_held_out_blocks": 4.0, "min_skill": 0.1, "max_disagreement_ratio": 2.0}
    assert report.summary == "skill 0.50/0.50 >= 0.1 at k=3, disagreement 1.20x <= 2x"
    evaluation = report.evaluation()
    assert evaluation["skill_reward"] == [0.5] * K and evaluation["imagined_reward_per_step"] == 0.3
    assert report.next_horizon == 3  # fixed: the preset's


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"blocks": 3}, "too little held-out data: 3 blocks < 4"),
        ({"pairs": 0}, "no held-out window spans 3 steps of one episode"),
        ({"reward_skill": 0.05}, "reward skill 0.05 < 0.1 at k=3"),
        ({"continue_skill": -1.5}, "continue skill -1.50 < 0.1 at k=3"),
        ({"reward_skill": float("nan")}, "reward skill nan < 0.1 at k=3"),
        ({"ratio": 3.5}, "imagination leaves the data: disagreement 3.50x > 2x"),
    ],
)
def test_each_failed_check_holds_back_with_one_short_reason(change, reason):
    report = decide(measured(**change), TRUST, preset_horizon=3)
    assert not report.passed and report.reasons == [reason]
    assert report.summary == reason and "\n" not in report.summary and len(report.summary) < 80


def test_the_skill_horizon_follows_the_held_out_curve():
    m = measured()
    m.skill["held_out"]["reward"] = [0.5, 0.4, 0.05, 0.0]
    report = decide(m, TRUST.model_copy(update={"horizon": "skill"}), preset_horizon=3)
    assert report.next_horizon == 2 and report.metrics["next_horizon"] == 2.0
    assert not report.passed  # judged at the horizon the candidate was trained with (3)


def test_the_trust_section_refuses_retired_keys_and_bad_horizons():
    with pytest.raises(ConfigError, match=r"trust: max_reward_error: no longer a trust key.*min_skill"):
        parse_robot_config({"trust": {"max_reward_error": 2.0}}, "cfg.yaml")
    with pytest.raises(ConfigError, match=r"min_held_out_episodes: no longer a trust key.*min_held_out_blocks"):
        parse_robot_config({"trust": {"min_held_out_episodes": 4}}, "cfg.yaml")
    with pytest.raises(ValueError, match="held_out_block_steps"):
        TrustConfig(held_out_block_steps=0)
    with pytest.raises(ValueError, match=r"horizon_max .* <= open_loop_steps"):
        TrustConfig(open_loop_steps=10, horizon_max=12)
    with pytest.raises(ValueError, match="held_out_fraction"):
        TrustConfig(held_out_fraction=0.0)


def test_over_optimism_comes_from_whole_episodes_of_the_version(tmp_path):
    with ReplayStore(tmp_path / "replay", obs_dim=2, act_dim=1) as store:
        expected: dict[int, list[float]] = {}
        for seq in range(600):
            start = seq - seq % 20
            version = 1 if seq < 310 else 2  # the episode of seqs 300..319 ran both: it counts for neither
            reward = 0.0 if seq == start else float(version) + (seq % 3)
            store.add(Transition(robot_id="a1", session_id="s", seq=seq, obs=np.zeros(2, np.float32),
                                 action=np.zeros(1, np.float32), reward=reward, is_first=seq == start,
                                 is_last=seq % 20 == 19, is_terminal=False, policy_version=version))
            if seq != start and start != 300:
                expected.setdefault(version, []).append(reward)
        real = real_reward_by_version(store)
    assert set(real) == {1, 2}
    for version, rewards in expected.items():
        assert real[version] == (pytest.approx(np.mean(rewards)), len(rewards))


def test_over_optimism_uses_the_newest_version_with_enough_real_steps():
    enough = MIN_STEPS_FOR_OVER_OPTIMISM
    predicted = {1: 0.9, 2: 1.5, 3: 2.0}
    real = {1: (0.4, enough * 3), 2: (0.5, enough), 3: (0.1, enough - 1)}  # v3 has too little data yet
    assert over_optimism(predicted, real) == {"over_optimism": pytest.approx(1.0), "over_optimism_version": 2.0,
                                              "real_reward_per_step": 0.5, "promised_reward_per_step": 1.5}
    assert over_optimism(predicted, {3: (0.1, enough - 1)}) == {}
