"""The learner loop: replay → updates at the train ratio → gated, signed bundles; resume after a restart."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dreamer_core.deploy import PolicyRuntime, generate_keypair, load_public_key
from dreamer_core.robots.config import load_robot_config
from dreamer_core.runners.learner import LearnerRunner, LearnerSettings
from dreamer_core.storage import ReplayStore, Transition


@pytest.fixture(scope="module")
def robot():
    config = load_robot_config("a1_sim")
    # Lenient gate: these tests are about the loop; the gate itself is tested in test_promotion.py.
    return config.model_copy(update={"trust": config.trust.model_copy(update={"max_reward_error": 1e6,
                                                                               "max_continue_error": 1.0})})


def fill_replay(directory, robot, steps: int, session: str = "s1") -> None:
    rng = np.random.default_rng(0)
    with ReplayStore(directory, obs_dim=robot.obs_dim, act_dim=robot.act_dim) as store:
        for seq in range(steps):
            store.add(Transition(
                robot_id=robot.robot_id, session_id=session, seq=seq,
                obs=rng.normal(size=robot.obs_dim).astype(np.float32),
                action=rng.uniform(-1, 1, robot.act_dim).astype(np.float32),
                reward=float(rng.normal()), is_first=seq % 200 == 0, is_last=seq % 200 == 199,
                is_terminal=False,
            ))


def settings(tmp_path, **kw) -> LearnerSettings:
    base = {"replay_dir": tmp_path / "replay", "run_dir": tmp_path / "learner", "min_steps": 400,
            "train_ratio": 64.0, "export_every_updates": 3, "checkpoint_every_updates": 2,
            "updates_per_iteration": 3, "nice": 0, "private_key": tmp_path / "keys" / "policy_signing.key"}
    return LearnerSettings(**{**base, **kw})


def test_waits_for_data_then_trains_and_signs(tmp_path, robot):
    generate_keypair(tmp_path / "keys")
    runner = LearnerRunner(robot, settings(tmp_path), log=lambda _: None)
    assert not runner.ready() and runner.iterate() == []  # no store yet
    fill_replay(tmp_path / "replay", robot, 300)
    assert not runner.ready()  # fewer than min_steps
    fill_replay(tmp_path / "replay", robot, 600)  # same session: 300 duplicates + 300 new steps
    assert runner.ready() and runner.policy_steps == 600
    cfg = runner.agent.config
    assert runner.updates_owed() == int(64.0 * 600 / (cfg.batch_size * cfg.seq_len))
    (bundle,) = runner.iterate()
    assert runner.state["updates"] == 3 and bundle.version == 1
    runtime = PolicyRuntime.load(bundle, expected_spec=robot.policy_spec(),
                                 public_key=load_public_key(tmp_path / "keys" / "policy_signing.pub"))
    action = runtime.step(np.zeros(robot.obs_dim, np.float32), explore=False, is_first=True)
    assert action.shape == (robot.act_dim,) and np.all(np.abs(action) <= 1.0)
    assert (tmp_path / "learner" / "bundles" / "policy_v0001.bundle").is_file()
    assert list((tmp_path / "learner" / "tensorboard").iterdir())
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
    assert second.state["updates"] == 3 and second.agent.updates == 3
    assert second.latest_bundle().version == 1
    assert [b.version for b in second.iterate()] == [2]
    second.close()


def test_refused_candidate_is_logged_not_published(tmp_path, robot):
    strict = robot.model_copy(update={"trust": robot.trust.model_copy(update={"max_reward_error": 1e-6})})
    fill_replay(tmp_path / "replay", strict, 900)
    logs = []
    runner = LearnerRunner(strict, settings(tmp_path, private_key=None), log=logs.append)
    assert runner.iterate() == []
    decisions = json.loads((tmp_path / "learner" / "learner_state.json").read_text())["promotions"]
    assert decisions[-1]["promoted"] is False and "reward error" in decisions[-1]["reasons"][0]
    assert runner.state["policy_version"] == 0
    assert any("NOT promoted" in line for line in logs) and any("UNSIGNED" in line for line in logs)
    runner.close()


def test_real_reward_by_version(tmp_path, robot):
    from dreamer_core.runners.learner import real_reward_by_version

    with ReplayStore(tmp_path / "replay", obs_dim=robot.obs_dim, act_dim=robot.act_dim) as store:
        for seq in range(30):
            store.add(Transition(robot_id="a1", session_id="s", seq=seq, obs=np.zeros(robot.obs_dim, np.float32),
                                 action=np.zeros(robot.act_dim, np.float32), reward=100.0 if seq == 0 else seq % 3,
                                 is_first=seq == 0, is_last=False, is_terminal=False,
                                 policy_version=1 if seq < 10 else 2))
        result = real_reward_by_version(store)
    assert result[1] == (pytest.approx(sum(s % 3 for s in range(1, 10)) / 9), 9)  # the is_first step is left out
    assert result[2] == (pytest.approx(sum(s % 3 for s in range(10, 30)) / 20), 20)


def test_over_optimism_is_reported_once_a_version_has_real_data(tmp_path, robot):
    fill_replay(tmp_path / "replay", robot, 900)
    runner = LearnerRunner(robot, settings(tmp_path, private_key=None), log=lambda _: None)
    runner.iterate()
    assert "1" in runner.state["predicted_reward"]
    # The robot now runs v1 for a while: its real steps carry policy_version 1.
    rng = np.random.default_rng(1)
    with ReplayStore(tmp_path / "replay2", obs_dim=robot.obs_dim, act_dim=robot.act_dim) as store:
        for seq in range(900):
            store.add(Transition(robot_id="a1", session_id="s2", seq=seq, obs=rng.normal(size=robot.obs_dim)
                                 .astype(np.float32), action=np.zeros(robot.act_dim, np.float32), reward=0.5,
                                 is_first=seq == 0, is_last=False, is_terminal=False, policy_version=1))
    runner.store.close()
    runner.store = ReplayStore(tmp_path / "replay2", readonly=True)
    metrics = runner._over_optimism()
    assert metrics["over_optimism_version"] == 1.0 and metrics["real_reward_per_step"] == pytest.approx(0.5)
    assert metrics["over_optimism"] == pytest.approx(runner.state["predicted_reward"]["1"] - 0.5)
    runner.close()
