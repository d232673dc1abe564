"""Heading: the controller observes and rewards the base's yaw since the episode began, so a
reward can pay walking straight on, and a robot that starts facing any way sees the same episode."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dreamer_core.control import Controller, InitialPolicy
from dreamer_core.envs.a1_mujoco import A1MujocoEnv
from dreamer_core.robots import ObservationBuilder, RewardFunction, RobotSignals
from dreamer_core.robots.config import parse_robot_config, resolve_config_path
from dreamer_core.robots.reward import heading
from dreamer_core.robots.signals import projected_gravity, roll_pitch, without_yaw, yaw


def yaw_quat(angle: float) -> np.ndarray:
    """Rotation by ``angle`` about the world z axis, (w, x, y, z)."""
    return np.array([math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)])


def turned(quat: np.ndarray, angle: float) -> np.ndarray:
    """``quat`` in a world frame turned by ``angle`` about z (the Hamilton product yaw_quat(angle) * quat)."""
    w1, _, _, z1 = yaw_quat(angle)
    w2, x2, y2, z2 = quat
    return np.array([w1 * w2 - z1 * z2, w1 * x2 - z1 * y2, w1 * y2 + z1 * x2, w1 * z2 + z1 * w2])


def wrapped(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


@given(st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1),
       st.floats(-math.pi, math.pi))
def test_the_episode_frame_removes_the_origin_heading_and_keeps_the_tilt(q, origin):
    quat = np.asarray(q) / np.linalg.norm(q)
    seen = without_yaw(quat, origin)
    assert np.linalg.norm(seen) == pytest.approx(1.0)
    np.testing.assert_allclose(projected_gravity(seen), projected_gravity(quat), atol=1e-9)
    if abs(roll_pitch(quat)[1]) < 1.5:  # the heading is defined (the nose not pointing straight up or down)
        assert wrapped(yaw(seen) - (yaw(quat) - origin)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(("angle", "expected"), [(0.0, 1.0), (0.5, 0.5), (-0.5, 0.5), (1.0, 0.0), (2.5, 0.0)])
def test_heading_is_one_minus_yaw_over_tolerance(angle, expected):
    assert heading(yaw_quat(angle), tolerance=1.0) == pytest.approx(expected)


def heading_task(max_seconds: float = 20.0):
    """a1_sim_trot that observes the heading, pays it and gates speed on it (docs/simulation.md)."""
    data = yaml.safe_load(resolve_config_path("a1_sim_trot").read_text())
    data["observation"].append({"name": "heading"})
    terms = data["reward"]["terms"]
    speed = next(t for t in terms if t["kind"] == "forward_velocity")
    terms.insert(terms.index(speed), {"name": "heading", "kind": "heading", "weight": 1.0, "gate": ["upright"],
                                      "gate_threshold": 0.9, "tolerance": 1.0})
    speed["gate"].append("heading")
    data["episode"]["max_seconds"] = max_seconds
    return parse_robot_config(data, source="a1_sim_trot.yaml with the heading terms")


def test_speed_pays_only_while_the_robot_keeps_its_heading():
    config = heading_task()
    reward = RewardFunction(config)
    default = np.array([j.default for j in config.joints])

    def speed_paid(angle: float) -> float:
        signals = RobotSignals(joint_pos=default, joint_vel=np.zeros(12), base_quat=yaw_quat(angle),
                               base_ang_vel=np.zeros(3), base_lin_vel=np.array([0.5, 0.0, 0.0]),
                               foot_contacts=np.ones(4))
        return reward(signals, np.zeros(12), np.zeros(12))[1]["forward_velocity"]

    assert speed_paid(0.0) == speed_paid(-0.4) == 5.0
    assert speed_paid(0.6) == speed_paid(-0.6) == 0.0  # heading 0.4 < the gate's 0.5: walked off course


def run_ticks(config, env: A1MujocoEnv, world_yaw: float, ticks: int) -> list:
    """Transitions of a controller that reads ``env`` from a world frame turned by ``world_yaw``."""
    env.reset(seed=3)
    ctrl = Controller(config, session_id="h", seed=3,
                      initial_policy=InitialPolicy(config.act_dim, "random", amplitude=0.8, seed=3))
    transitions = []
    for _ in range(ticks):
        signals = env.read_signals()
        signals.base_quat = turned(signals.base_quat, world_yaw)
        out = ctrl.tick(signals, now=signals.stamp)
        transitions += out.transitions
        if out.episode_ended:
            env.reset_physics()
        else:
            env.apply_joint_targets(out.joint_targets)
    return transitions


def test_a_robot_facing_any_way_sees_the_same_episodes():
    config = heading_task(max_seconds=3.0)  # two episodes and a bit within the ticks below
    env = A1MujocoEnv(config, seed=3, randomize=True)
    ticks = int(2.5 * config.episode_steps)
    straight, facing_west = run_ticks(config, env, 0.0, ticks), run_ticks(config, env, 1.3, ticks)
    assert sum(t.is_first for t in straight) == 3
    where = dict(ObservationBuilder(config).layout())["heading"]
    for a, b in zip(straight, facing_west, strict=True):
        np.testing.assert_allclose(a.obs, b.obs, atol=1e-5)
        assert a.reward == pytest.approx(b.reward, abs=1e-5)
        if a.is_first:  # every episode starts facing heading 0 of its own frame
            np.testing.assert_allclose(b.obs[where], [0.0, 1.0], atol=1e-6)
