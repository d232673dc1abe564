"""Model trust on hand-made numbers: skill against the baselines, the horizon rule, each reason of the
promotion rule, over-optimism from real episodes, and the robot config's trust section."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from learner_helpers import tiny_agent

from dreamer_core.algorithms.trust import Measurements, decide, over_optimism, real_reward_by_version
from dreamer_core.algorithms.trust.horizon import skill_horizon
from dreamer_core.algorithms.trust.optimism import MIN_STEPS_FOR_OVER_OPTIMISM
from dreamer_core.algorithms.trust.paired import paired_skill, window_skill
from dreamer_core.algorithms.trust.running import PromotedModels
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


def window_errors(model: list[float], counts: list[int] | None = None, base: float = 1.0) -> dict:
    """``open_loop_errors`` output, the same at every k: the model's summed error per window (reward
    and continue alike), its pairs per window, and a baseline error of ``base`` per pair."""
    counts = counts or [10] * len(model)
    mean = float(np.sum(model) / max(np.sum(counts), 1))
    errors = {"count": [int(np.sum(counts))] * K, "count_windows": [list(counts)] * K, "reward_scale": 1.0}
    for name in ("reward", "continue"):
        errors.update({f"{name}_model": [mean] * K, f"{name}_mean": [base] * K, f"{name}_persistence": [2 * base] * K,
                       f"{name}_model_windows": [list(model)] * K})
    return errors


def measured(reward_skill=0.5, continue_skill=0.5, ratio=1.2, blocks=10, pairs=100, horizon=3,
             candidate: list[float] | None = None, running: list[float] | None = None) -> Measurements:
    """Measurements with these held-out values; with ``running``, a running model (v1) measured on the same
    windows as the ``candidate``'s per-window errors."""
    def part(r, c, q):
        return ({"count": [pairs] * K}, {"reward": [r] * K, "continue": [c] * K},
                {"disagreement_ratio_reward": q, "disagreement_ratio_dynamics": q / 2, "imagined_reward_per_step": 0.3})
    m = Measurements(blocks, horizon)
    for name, (errors, curves, imagination) in (("held_out", part(reward_skill, continue_skill, ratio)),
                                                ("train", part(0.7, 0.7, 1.0))):
        m.errors[name], m.skill[name], m.imagination[name] = errors, curves, imagination
    if running is not None:
        m.running_version = 1
        m.errors["held_out"] = {**window_errors(candidate), "count": [pairs] * K}
        m.errors["running"] = window_errors(running)
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
    assert report.thresholds == {"min_held_out_blocks": 4.0, "min_skill": 0.1, "max_skill_drop": 0.1,
                                 "skill_confidence": 0.9, "max_disagreement_ratio": 2.0}
    assert report.summary == "skill 0.50/0.50 >= 0.1 at k=3, first learned model: floor only, disagreement 1.20x <= 2x"
    assert "running_version" not in report.metrics
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


def test_a_window_s_terms_average_to_the_batch_skill():
    errors = window_errors([1.0, 3.0, 0.0, 8.0], counts=[10, 10, 0, 20], base=0.5)  # one window without pairs
    terms = window_skill(errors, "reward", k=2)
    assert len(terms) == 3  # the window without a pair has no term
    assert terms.mean() == pytest.approx(skill_curves(errors)["reward"][1])
    assert terms.mean() == pytest.approx(1 - (12.0 / 40) / 0.5)


NOISY = [5.0, 6.0, 4.0, 5.5, 4.5, 6.5, 3.5, 5.0]  # the running model's summed error per window (10 pairs each)


@pytest.mark.parametrize(
    ("candidate", "passed"),
    [
        (NOISY, True),  # the running model itself: difference 0
        ([e - 1.0 for e in NOISY], True),  # better everywhere
        ([e + (1.5 if i % 2 else -1.3) for i, e in enumerate(NOISY)], True),  # worse on average, not clearly
        ([e + 2.0 for e in NOISY], False),  # worse in every window by 0.2 pairs' worth of baseline error
    ],
)
def test_the_paired_check_holds_back_only_a_clearly_worse_model(candidate, passed):
    report = decide(measured(candidate=candidate, running=NOISY), TRUST, preset_horizon=3)
    assert report.passed == passed, report.summary
    m = report.metrics
    assert m["running_version"] == 1.0 and m["paired_windows"] == len(NOISY)
    assert m["reward_skill_diff_low"] <= m["reward_skill_diff"] <= m["reward_skill_diff_high"]
    assert m["reward_skill_diff"] == pytest.approx(-(np.sum(candidate) - np.sum(NOISY)) / 80)
    if passed:
        assert report.summary.startswith("skill 0.50/0.50 >= 0.1 at k=3, vs v1 ")
        assert "90% high" in report.summary and ">= -0.1" in report.summary
    else:
        assert report.reasons == ["reward skill below v1's: -0.20, 90% high -0.20 < -0.1",
                                  "continue skill below v1's: -0.20, 90% high -0.20 < -0.1"]


def test_the_paired_check_is_repeatable_and_refuses_bad_inputs():
    worse = [e + 1.0 for e in NOISY]
    first = decide(measured(candidate=worse, running=NOISY), TRUST, preset_horizon=3)
    again = decide(measured(candidate=worse, running=NOISY), TRUST, preset_horizon=3)
    assert first.metrics == again.metrics and first.summary == again.summary
    # A model that predicts NaN in one window is held back, never promoted on the other windows.
    broken = decide(measured(candidate=[float("nan"), *NOISY[1:]], running=NOISY), TRUST, preset_horizon=3)
    assert not broken.passed and "reward skill below v1's: +nan" in broken.summary
    # Fewer windows than held-out blocks required: no comparison.
    few = decide(measured(candidate=NOISY[:3], running=NOISY[:3]), TRUST, preset_horizon=3)
    assert few.reasons == ["too few held-out windows to compare with v1: 3 < 4"]
    with pytest.raises(ValueError, match="same windows"):
        paired_skill(window_errors(NOISY), window_errors(NOISY[:4]), "reward", 2, 0.9)
    with pytest.raises(ValueError, match="no window has a pair at k=2"):
        paired_skill(window_errors([0.0], [0]), window_errors([0.0], [0]), "reward", 2, 0.9)


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


def test_the_running_model_is_the_newest_promoted_one_not_rejected():
    agent = tiny_agent()
    models = PromotedModels()
    assert models.running(agent, rejected=[]) is None  # nothing promoted: the initial policy runs
    for version in (1, 2, 3, 4):
        models.add(version, agent, rejected=[2])
    assert sorted(models.snapshots) == [1, 3, 4]  # the newest KEPT_MODELS not rejected
    first = next(iter(agent.wm.parameters()))
    kept = first.detach().clone()
    with torch.no_grad():
        first.add_(1.0)  # the learner trains on: the snapshot stays as it was at promotion
    version, running = models.running(agent, rejected=[4])
    assert version == 3 and running is not agent
    assert torch.equal(next(iter(running.wm.parameters())), kept)
    assert models.running(agent, rejected=[4])[1] is running  # built once per version
    assert models.running(agent, rejected=[1, 3, 4]) is None  # every kept version rolled back
