"""The simulated A1 (real MuJoCo, model built from the pybullet_data URDF)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import yaml

from dreamer_core.envs.a1_mujoco import A1MujocoEnv
from dreamer_core.robots import ObservationBuilder, RewardFunction, load_robot_config
from dreamer_core.robots.config import parse_robot_config, resolve_config_path
from dreamer_core.robots.signals import tilt


@pytest.fixture(scope="module")
def config():
    return load_robot_config("a1_sim")


def modified(change) -> object:
    data = yaml.safe_load(resolve_config_path("a1_sim").read_text())
    change(data)
    return parse_robot_config(data)


def test_stands_for_ten_seconds_under_default_pose_pd(config):
    env = A1MujocoEnv(config)
    first = env.reset()
    assert first["is_first"] and not first["is_last"] and first["reward"] == 0.0
    default = np.array([j.default for j in config.joints])
    for _ in range(round(10.0 / env.dt)):
        signals = env.apply_joint_targets(default)
    assert signals.stamp == pytest.approx(10.0)
    height = env.base_position()[2]
    assert 0.2 < height < 0.35, height
    assert tilt(signals.base_quat) < 0.1
    np.testing.assert_allclose(signals.joint_pos, default, atol=0.15)
    assert np.all(signals.foot_contacts == 1.0)
    assert np.abs(env.base_position()[:2]).max() < 0.1  # no drifting away


def test_policy_steps_with_zero_action_also_stand(config):
    env = A1MujocoEnv(config)
    env.reset()
    for _ in range(100):
        out = env.step(np.zeros(config.act_dim))
        assert not out["is_last"]
    assert out["reward"] > 3.5  # upright and near the posture (velocity ~0): about 4
    assert env.base_position()[2] > 0.2


def test_falls_without_actuation(config):
    env = A1MujocoEnv(config, actuated=False)
    env.reset()
    start = env.base_position()[2]
    env.step_physics(None, round(2.0 / env.physics_dt))
    assert start - env.base_position()[2] > 0.15
    assert env.base_position()[2] < 0.12


def test_feet_report_no_contact_in_the_air():
    env = A1MujocoEnv(modified(lambda d: d["sim"].update(initial_height=1.0)))
    signals = env.reset()["signals"]
    assert np.all(signals.foot_contacts == 0.0)


def test_env_observation_is_the_shared_builder_in_config_order(config):
    reordered = modified(lambda d: d.update(observation=[
        {"name": "prev_action"}, {"name": "base_lin_vel", "scale": 2.0}, {"name": "joint_pos"},
        {"name": "roll_pitch"},
    ]))
    env = A1MujocoEnv(reordered)
    env.reset()
    action = np.linspace(-0.5, 0.5, 12)
    out = env.step(action)
    builder = ObservationBuilder(reordered)
    np.testing.assert_allclose(out["action"], action, rtol=1e-6)  # nothing limited it: the action as asked
    np.testing.assert_array_equal(out["obs"], builder.build(out["signals"], out["action"]))
    layout = dict(builder.layout())
    assert layout["prev_action"] == slice(0, 12) and layout["roll_pitch"] == slice(27, 29)
    np.testing.assert_allclose(out["obs"][layout["prev_action"]], action, rtol=1e-6)
    lin_vel = out["obs"][layout["base_lin_vel"]]
    np.testing.assert_allclose(lin_vel, 2.0 * out["signals"].base_lin_vel, rtol=1e-5)
    reward, terms = RewardFunction(reordered)(out["signals"], out["action"], np.zeros(12))
    assert out["reward"] == pytest.approx(reward) and out["reward_terms"] == pytest.approx(terms)


def test_imu_and_velocity_conventions(config):
    env = A1MujocoEnv(config)
    env.reset()
    yaw = np.pi / 2
    env.data.qpos[3:7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]  # facing world +y
    env.data.qvel[0:3] = [1.0, 0.0, 0.0]  # moving along world +x = the body's right (-y)
    env.data.qvel[3:6] = [0.0, 0.0, 0.7]  # free-joint angular velocity is in the body frame
    mujoco.mj_forward(env.model, env.data)
    signals = env.read_signals()
    np.testing.assert_allclose(signals.base_quat, env.data.qpos[3:7], atol=1e-9)
    np.testing.assert_allclose(signals.base_lin_vel, [0.0, -1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(signals.base_ang_vel, [0.0, 0.0, 0.7], atol=1e-9)
    # Reset drops the robot from initial_height: free fall reads ~0; standing still reads +g up.
    env.reset()
    assert np.abs(env.imu_acceleration()).max() < 0.1
    for _ in range(100):
        env.step(np.zeros(12))
    assert env.imu_acceleration()[2] == pytest.approx(9.81, abs=0.3)


def test_fall_ends_the_episode_as_terminal(config):
    env = A1MujocoEnv(config)
    env.reset()
    env.data.qvel[3] = 20.0  # a hard roll kick
    for _ in range(200):
        out = env.step(np.zeros(12))
        if out["is_last"]:
            break
    assert out["is_last"] and out["is_terminal"]
    assert tilt(out["signals"].base_quat) > config.safety.max_tilt_rad
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros(12))
    assert env.reset()["is_first"]


def test_time_limit_ends_the_episode_without_terminal():
    env = A1MujocoEnv(modified(lambda d: d.update(episode={"max_steps": 5})))
    env.reset()
    flags = [(o["is_last"], o["is_terminal"]) for o in (env.step(np.zeros(12)) for _ in range(5))]
    assert flags == [(False, False)] * 4 + [(True, False)]


def test_randomisation_samples_the_configured_ranges_and_is_seeded(config):
    env = A1MujocoEnv(config, seed=1, randomize=True)
    rnd = config.sim.randomization
    seen = set()
    for _ in range(5):
        env.reset()
        assert rnd.friction[0] <= env.domain["friction"] <= rnd.friction[1]
        assert rnd.added_mass_kg[0] <= env.domain["added_mass_kg"] <= rnd.added_mass_kg[1]
        assert rnd.action_latency_s[0] <= env.domain["action_latency_s"] <= rnd.action_latency_s[1] + 1e-3
        seen.add(env.domain["friction"])
        floor = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        assert env.model.geom_friction[floor, 0] == env.domain["friction"]
    assert len(seen) == 5
    a, b = A1MujocoEnv(config, seed=7, randomize=True), A1MujocoEnv(config, seed=7, randomize=True)
    a.reset(), b.reset()
    assert a.domain == b.domain
    action = np.full(12, 0.3)
    np.testing.assert_array_equal(a.step(action)["obs"], b.step(action)["obs"])
    plain = A1MujocoEnv(config, seed=7)
    plain.reset()
    assert plain.domain == {"friction": 1.0, "added_mass_kg": 0.0, "action_latency_s": 0.0}


def test_action_latency_delays_targets_by_whole_physics_steps():
    env = A1MujocoEnv(modified(lambda d: d["sim"]["randomization"].update(action_latency_s=[0.01, 0.01])),
                      randomize=True)
    env.reset()
    assert env.domain["action_latency_s"] == pytest.approx(0.01)  # 5 steps of 2 ms
    default = env.data.ctrl.copy()
    targets = default + 0.1
    env.step_physics(targets, 4)
    np.testing.assert_array_equal(env.data.ctrl, default)
    env.step_physics(None, 2)
    np.testing.assert_array_equal(env.data.ctrl, targets)
    with pytest.raises(ValueError, match="joint targets"):
        env.apply_joint_targets(np.full(12, np.nan))


def test_real_robot_config_cannot_be_simulated():
    with pytest.raises(ValueError, match="has no 'sim' section"):
        A1MujocoEnv(load_robot_config("real_robot_template"))


def test_bad_sim_model_settings_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"sim\.urdf"):
        A1MujocoEnv(modified(lambda d: d["sim"].update(urdf=str(tmp_path / "missing.urdf"))))
    with pytest.raises(ValueError, match=r"sim\.foot_bodies\.2: no body 'RR_foot'"):
        A1MujocoEnv(modified(lambda d: d["sim"]["foot_bodies"].__setitem__(2, "RR_foot")))

    def rename_first_joint(d):
        d["joints"][0]["name"] = "FR_hip"
        d["reward"]["terms"][1]["joints"][0] = "FR_hip"

    with pytest.raises(ValueError, match=r"joints\.0\.name: no joint 'FR_hip'"):
        A1MujocoEnv(modified(rename_first_joint))
