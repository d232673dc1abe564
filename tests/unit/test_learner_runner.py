"""The learner loop: replay → updates at the train ratio → gated, signed bundles; resume after a
restart, refused when the checkpoint or the store does not fit the run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dreamer_core.deploy import PolicyRuntime, generate_keypair, load_public_key
from dreamer_core.robots.config import load_robot_config
from dreamer_core.runners.learner import LearnerRunner
from dreamer_core.runners.learner_settings import LearnerSettings
from dreamer_core.storage import ReplayStore, Transition


@pytest.fixture(scope="module")
def robot():
    config = load_robot_config("a1_sim")
    # Lenient gate: these tests are about the loop; the gate itself is tested in test_trust_rules.py and
    # test_model_trust.py. Half the episodes are held out so that every store here has some.
    lenient = {"min_skill": -1e6, "max_skill_drop": 1e6, "max_disagreement_ratio": 1e6, "held_out_fraction": 0.5,
               "min_held_out_blocks": 1}
    return config.model_copy(update={"trust": config.trust.model_copy(update=lenient)})


def fill_replay(directory, robot, steps: int, session: str = "s1") -> None:
    rng = np.random.default_rng(0)
    with ReplayStore(directory, obs_dim=robot.obs_dim, act_dim=robot.act_dim) as store:
        for seq in range(steps):
            store.add(Transition(
                robot_id=robot.robot_id, session_id=session, seq=seq,
                obs=rng.normal(size=robot.obs_dim).astype(np.float32),
                action=rng.uniform(-1, 1, robot.act_dim).astype(np.float32),
                reward=float(rng.normal()), is_first=seq % 50 == 0, is_last=seq % 50 == 49,
                is_terminal=False,
            ))


def settings(tmp_path, **kw) -> LearnerSettings:
    base = {"replay_dir": tmp_path / "replay", "run_dir": tmp_path / "learner", "min_steps": 400,
            "export_every_updates": 3, "checkpoint_every_updates": 2,
            "updates_per_iteration": 3, "nice": 0, "private_key": tmp_path / "keys" / "policy_signing.key"}
    return LearnerSettings(**{**base, **kw})


def test_waits_for_data_then_trains_and_signs(tmp_path, robot):
    generate_keypair(tmp_path / "keys")
    runner = LearnerRunner(robot, settings(tmp_path), log=lambda _: None)
    assert not runner.ready() and runner.iterate() == []  # no store yet
    fill_replay(tmp_path / "replay", robot, 300)
    assert not runner.ready()  # fewer than min_steps
    fill_replay(tmp_path / "replay", robot, 600)  # same session: 300 duplicates + 300 new steps
    assert runner.ready() and runner.replay_steps == 600
    cfg = runner.agent.config
    assert runner.updates_owed() == int(cfg.train_ratio * 600 / (cfg.batch_size * cfg.seq_len))
    (bundle,) = runner.iterate()
    assert runner.updates == 3 and bundle.version == 1
    runtime = PolicyRuntime.load(bundle, expected_spec=robot.policy_spec(),
                                 public_key=load_public_key(tmp_path / "keys" / "policy_signing.pub"))
    action = runtime.step(np.zeros(robot.obs_dim, np.float32), explore=False, is_first=True)
    assert action.shape == (robot.act_dim,) and np.all(np.abs(action) <= 1.0)
    assert (tmp_path / "learner" / "bundles" / "policy_v0001.bundle").is_file()
    assert list((tmp_path / "learner" / "tensorboard").iterdir())
    # Every check records the critic's value against the real return that followed (held-out and training).
    metrics = runner.state.promotions[-1].metrics
    for key in ("value_critic", "value_real_return", "value_critic_train", "value_real_return_train"):
        assert np.isfinite(metrics[key]), key
    runner.close()


def test_resume_keeps_versions_monotonic(tmp_path, robot):
    generate_keypair(tmp_path / "keys")
    fill_replay(tmp_path / "replay", robot, 900)
    first = LearnerRunner(robot, settings(tmp_path), log=lambda _: None)
    assert [b.version for b in first.iterate()] == [1]
    first.close()  # as after a kill: state was checkpointed when v1 was promoted
    logs = []
    second = LearnerRunner(robot, settings(tmp_path), log=logs.append)
    assert any("resumed" in line for line in logs)
    assert second.updates == 3 and second.state.policy_version == 1
    assert second.latest_bundle().version == 1
    assert [b.version for b in second.iterate()] == [2]
    # v1's world model came back with the checkpoint: v2 was compared with it.
    assert second.state.promotions[-1].metrics["running_version"] == 1.0
    second.close()


def test_the_gate_measures_fixed_windows_against_the_running_model(tmp_path, robot):
    fill_replay(tmp_path / "replay", robot, 900)
    runner = LearnerRunner(robot, settings(tmp_path, private_key=None), log=lambda _: None)
    first = runner.check_trust() if runner.ready() else None
    assert "running_version" not in first.metrics and "first learned model: floor only" in first.summary
    assert [b.version for b in runner.iterate()] == [1]
    # Same data, same model: the same measurement, every value (no window or latent is drawn).
    again, twice = runner.check_trust(), runner.check_trust()
    assert again.metrics == twice.metrics and again.summary == twice.summary
    # The running model is v1's, and the model has not changed since: the difference is exactly 0.
    m = again.metrics
    assert m["running_version"] == 1.0 and m["reward_skill_diff"] == 0.0 == m["reward_skill_diff_high"]
    assert m["reward_skill_running"] == pytest.approx(m["reward_skill"], abs=1e-6)
    assert "vs v1 +0.00/+0.00" in again.summary
    assert m["paired_windows"] >= robot.trust.min_held_out_blocks
    # The robot rolled v1 back: the initial policy runs again, so there is no learned model to compare with.
    runner.record_policy_event(robot.robot_id, 1, "rolled_back", "canary failed", {})
    assert "running_version" not in runner.check_trust().metrics
    runner.close()


def test_refused_candidate_is_logged_not_published(tmp_path, robot):
    strict = robot.model_copy(update={"trust": robot.trust.model_copy(update={"min_skill": 0.999})})
    fill_replay(tmp_path / "replay", strict, 900)
    logs = []
    runner = LearnerRunner(strict, settings(tmp_path, private_key=None), log=logs.append)
    assert runner.iterate() == []
    decisions = json.loads((tmp_path / "learner" / "learner_state.json").read_text())["promotions"]
    assert decisions[-1]["promoted"] is False and "reward skill" in decisions[-1]["reasons"][0]
    assert runner.state.policy_version == 0 and not runner.state.promotions[-1].promoted
    assert any("held back" in line for line in logs) and any("UNSIGNED" in line for line in logs)
    runner.close()


def test_over_optimism_is_reported_once_a_version_has_real_data(tmp_path, robot):
    fill_replay(tmp_path / "replay", robot, 900)
    runner = LearnerRunner(robot, settings(tmp_path, private_key=None), log=lambda _: None)
    runner.iterate()
    assert 1 in runner.state.predicted_reward
    # The robot now runs v1 for a while: its real steps carry policy_version 1.
    rng = np.random.default_rng(1)
    with ReplayStore(tmp_path / "replay2", obs_dim=robot.obs_dim, act_dim=robot.act_dim) as store:
        for seq in range(900):
            store.add(Transition(robot_id="a1", session_id="s2", seq=seq, obs=rng.normal(size=robot.obs_dim)
                                 .astype(np.float32), action=np.zeros(robot.act_dim, np.float32),
                                 reward=0.0 if seq % 50 == 0 else 0.5, is_first=seq % 50 == 0,
                                 is_last=seq % 50 == 49, is_terminal=False, policy_version=1))
    runner.store.close()
    runner.store = ReplayStore(tmp_path / "replay2", readonly=True)
    runner.state.last_export_update = -100  # a candidate is due at the next iteration
    runner.iterate()
    metrics = runner.state.promotions[-1].metrics
    assert metrics["over_optimism_version"] == 1.0 and metrics["real_reward_per_step"] == pytest.approx(0.5)
    assert metrics["over_optimism"] == pytest.approx(runner.state.predicted_reward[1] - 0.5)
    runner.close()


def test_learner_state_lives_in_the_checkpoint_and_its_records_are_bounded(tmp_path, robot):
    from dreamer_core.algorithms.agent import read_checkpoint
    from dreamer_core.runners.learner import KEPT_RECORDS, LearnerState, PromotionRecord

    runner = LearnerRunner(robot, settings(tmp_path, private_key=None), log=lambda _: None)
    for version in range(1, KEPT_RECORDS + 21):
        runner.state.record(PromotionRecord(version=version, update=version, time=0.0, promoted=True,
                                            reasons=[], summary="", metrics={}, thresholds={}))
        runner.state.predict(version, 0.1 * version)
    runner.state.policy_version = KEPT_RECORDS + 20
    runner.checkpoint()
    runner.close()
    (tmp_path / "learner" / "learner_state.json").unlink()  # the summary is derived, not needed to resume
    saved = LearnerState.model_validate(read_checkpoint(tmp_path / "learner" / "agent.ckpt")["extra"]["learner"])
    assert [r.version for r in saved.promotions] == list(range(21, KEPT_RECORDS + 21))
    assert sorted(saved.predicted_reward) == list(range(21, KEPT_RECORDS + 21))
    resumed = LearnerRunner(robot, settings(tmp_path, private_key=None), log=lambda _: None)
    assert resumed.state == saved and resumed.state.policy_version == KEPT_RECORDS + 20
    resumed.close()


def _dropped_foot_contacts(robot):
    return robot.model_copy(update={"observation": [t for t in robot.observation if t.name != "foot_contacts"]})


def _swapped_front_legs(robot):
    joints = robot.joints
    return robot.model_copy(update={"joints": joints[3:6] + joints[:3] + joints[6:]})


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda robot: (_dropped_foot_contacts(robot), {}),
         "obs_dim/act_dim: checkpoint 46/12, robot config 'a1_sim' 42/12"),
        (lambda robot: (robot, {"preset": "s"}), "preset: checkpoint 'xs', settings 's'"),
        (lambda robot: (_swapped_front_legs(robot), {}),
         "action joint 0 is 'FR_hip_joint', robot's is 'FL_hip_joint'"),
    ],
)
def test_resume_refuses_a_checkpoint_that_does_not_fit_the_run(tmp_path, robot, change, expected):
    first = LearnerRunner(robot, settings(tmp_path, private_key=None), log=lambda _: None)
    first.checkpoint()
    first.close()
    other_robot, other_settings = change(robot)
    with pytest.raises(ValueError, match="refusing to resume") as exc:
        LearnerRunner(other_robot, settings(tmp_path, private_key=None, **other_settings), log=lambda _: None)
    assert expected in str(exc.value)
    assert "policy spec hash: checkpoint" in str(exc.value) or "preset" in expected
    # The same run resumes.
    LearnerRunner(robot, settings(tmp_path, private_key=None), log=lambda _: None).close()


def _held_out(robot, **update):
    return robot.model_copy(update={"trust": robot.trust.model_copy(update=update)})


def test_resume_refuses_a_held_out_rule_that_would_count_trained_on_data_as_held_out(tmp_path, robot):
    first = LearnerRunner(_held_out(robot, held_out_fraction=0.3), settings(tmp_path, private_key=None),
                          log=lambda _: None)
    first.checkpoint()
    first.close()
    for change, expected in (({"held_out_fraction": 0.4}, "trust.held_out_fraction: checkpoint 0.3, robot config 0.4"),
                             ({"held_out_fraction": 0.3, "held_out_block_steps": None},
                              "trust.held_out_block_steps: checkpoint 250, robot config None")):
        with pytest.raises(ValueError, match="refusing to resume") as exc:
            LearnerRunner(_held_out(robot, **change), settings(tmp_path, private_key=None), log=lambda _: None)
        assert expected in str(exc.value)
    # A lower fraction only releases held-out blocks for training: it resumes, and is the run's from then on.
    lower = LearnerRunner(_held_out(robot, held_out_fraction=0.2), settings(tmp_path, private_key=None),
                          log=lambda _: None)
    lower.checkpoint()
    lower.close()
    with pytest.raises(ValueError, match=r"trust\.held_out_fraction: checkpoint 0\.2, robot config 0\.3"):
        LearnerRunner(_held_out(robot, held_out_fraction=0.3), settings(tmp_path, private_key=None), log=lambda _: None)


def test_a_replay_store_of_another_layout_is_refused_naming_both(tmp_path, robot):
    with ReplayStore(tmp_path / "replay", obs_dim=robot.obs_dim - 4, act_dim=robot.act_dim):
        pass
    runner = LearnerRunner(robot, settings(tmp_path, private_key=None), log=lambda _: None)
    with pytest.raises(ValueError, match=r"obs_dim/act_dim: replay store 42/12, learner 46/12"):
        runner.ready()
    runner.close()
