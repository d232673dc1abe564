"""Each reward term gives the value documented in docs/robot_config.md on hand-made signals."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from dreamer_core.robots import RewardFunction, RobotSignals, load_robot_config
from dreamer_core.robots.config import ConfigError, parse_robot_config, resolve_config_path
from dreamer_core.robots.reward import (
    REWARD_KINDS,
    RewardKind,
    action_rate,
    forward_velocity,
    gate_factor,
    joint_posture,
    joint_velocity,
    upright,
)


def roll_quat(angle: float) -> np.ndarray:
    """Rotation by ``angle`` about the body x axis, (w, x, y, z)."""
    return np.array([np.cos(angle / 2), np.sin(angle / 2), 0.0, 0.0])


def signals(config, quat=None, joint_offset=None, vx=0.0, joint_vel=None) -> RobotSignals:
    default = np.array([j.default for j in config.joints])
    return RobotSignals(
        joint_pos=default + (0.0 if joint_offset is None else joint_offset),
        joint_vel=np.zeros(config.act_dim) if joint_vel is None else joint_vel,
        base_quat=roll_quat(0.0) if quat is None else quat,
        base_ang_vel=np.zeros(3),
        base_lin_vel=np.array([vx, 0.0, 0.0]),
        foot_contacts=np.ones(4),
    )


@pytest.mark.parametrize(
    ("angle", "expected"), [(0.0, 1.0), (np.pi / 3, 0.75), (np.pi / 2, 0.5), (np.pi, 0.0)]
)
def test_upright_is_half_of_one_plus_cos_tilt(angle, expected):
    assert upright(roll_quat(angle)) == pytest.approx(expected, abs=1e-9)
    # A yaw leaves the body upright.
    yaw = np.array([np.cos(0.4), 0.0, 0.0, np.sin(0.4)])
    assert upright(yaw) == pytest.approx(1.0)


def test_joint_posture_is_one_minus_mean_abs_error_over_tolerance():
    target = np.array([0.0, 0.9, -1.8, 0.0])
    assert joint_posture(target, target, 0.5) == pytest.approx(1.0)
    # Mean abs error 0.1 rad with tolerance 0.5 -> 1 - 0.2.
    assert joint_posture(target + np.array([0.1, -0.1, 0.2, 0.0]), target, 0.5) == pytest.approx(0.8)
    # Errors beyond the tolerance floor at 0.
    assert joint_posture(target + 1.0, target, 0.5) == 0.0


def test_forward_velocity_is_clipped_speed_ratio():
    assert forward_velocity(np.array([0.25, 3.0, 0.0]), 0.5) == pytest.approx(0.5)
    assert forward_velocity(np.array([2.0, 0.0, 0.0]), 0.5) == 1.0
    assert forward_velocity(np.array([-2.0, 0.0, 0.0]), 0.5) == -1.0


def test_penalty_terms():
    assert action_rate(np.array([1.0, 0.0]), np.array([0.0, 0.5])) == pytest.approx(1.25)
    assert joint_velocity(np.array([1.0, -2.0, 0.0])) == pytest.approx(5.0)


def test_a1_walking_reward_gating_on_hand_made_states():
    config = load_robot_config("a1_sim")
    reward = RewardFunction(config)
    act = np.zeros(12)
    # Level, at the standing pose, moving at half the target speed:
    # 1 (upright) + 3 x 1 (postures) + 5 x 0.5 (velocity) = 6.5.
    total, terms = reward(signals(config, vx=0.25), act, act)
    assert terms == pytest.approx({"upright": 1.0, "hip_posture": 1.0, "thigh_posture": 1.0,
                                   "knee_posture": 1.0, "forward_velocity": 2.5})
    assert total == pytest.approx(6.5)
    # Rolled 60 degrees: upright 0.75 gates each posture (0.75) and the velocity (5 x 0.5 x 0.75).
    total, terms = reward(signals(config, quat=roll_quat(np.pi / 3), vx=0.25), act, act)
    assert terms["hip_posture"] == pytest.approx(0.75)
    assert terms["forward_velocity"] == pytest.approx(1.875)
    assert total == pytest.approx(0.75 + 3 * 0.75 + 1.875)
    # Knees bent 0.25 rad off the pose: knee posture 1 - 0.25/0.5 = 0.5 halves the velocity term.
    knee_offset = np.zeros(12)
    knee_offset[2::3] = 0.25
    total, terms = reward(signals(config, joint_offset=knee_offset, vx=0.25), act, act)
    assert terms["knee_posture"] == pytest.approx(0.5)
    assert terms["forward_velocity"] == pytest.approx(1.25)
    # Upside down: nothing but the (zero) upright term.
    total, terms = reward(signals(config, quat=roll_quat(np.pi), vx=0.25), act, act)
    assert total == pytest.approx(0.0, abs=1e-12)


def test_weights_alive_and_penalties_in_a_config():
    data = yaml.safe_load(resolve_config_path("a1_sim").read_text())
    data["reward"]["terms"] = [
        {"name": "alive", "kind": "alive", "weight": 0.5},
        {"name": "smooth", "kind": "action_rate", "weight": -0.1},
        {"name": "still", "kind": "joint_velocity", "weight": -0.01},
    ]
    config = parse_robot_config(data)
    joint_vel = np.zeros(12)
    joint_vel[0] = 3.0
    action, prev = np.full(12, 0.5), np.zeros(12)
    total, terms = RewardFunction(config)(signals(config, joint_vel=joint_vel), action, prev)
    assert terms == pytest.approx({"alive": 0.5, "smooth": -0.1 * 12 * 0.25, "still": -0.01 * 9.0})
    assert total == pytest.approx(0.5 - 0.3 - 0.09)


def test_is_fallen_uses_the_safety_tilt():
    config = load_robot_config("a1_sim")  # max_tilt_rad 1.2
    reward = RewardFunction(config)
    assert not reward.is_fallen(signals(config, quat=roll_quat(1.1)))
    assert reward.is_fallen(signals(config, quat=roll_quat(1.3)))
    assert reward.is_fallen(signals(config, quat=roll_quat(np.pi)))


def test_missing_odometry_signal_is_an_error_not_a_zero():
    config = load_robot_config("a1_sim")
    s = signals(config)
    s.base_lin_vel = None
    with pytest.raises(ValueError, match="needs base_lin_vel"):
        RewardFunction(config)(s, np.zeros(12), np.zeros(12))


def test_a_new_reward_kind_is_one_registry_entry(monkeypatch):
    monkeypatch.setitem(REWARD_KINDS, "yaw_rate", RewardKind(
        signals=("base_ang_vel",), make=lambda term, config: lambda s, action, prev: float(s.base_ang_vel[2] ** 2)))
    data = yaml.safe_load(resolve_config_path("a1_sim").read_text())
    data["reward"]["terms"] = [{"name": "alive", "kind": "alive"}, {"name": "spin", "kind": "yaw_rate", "weight": -0.5}]
    config = parse_robot_config(data)
    s = signals(config)
    s.base_ang_vel = np.array([0.0, 0.0, 2.0])
    total, terms = RewardFunction(config)(s, np.zeros(12), np.zeros(12))
    assert terms == pytest.approx({"alive": 1.0, "spin": -2.0}) and total == pytest.approx(-1.0)
    s.base_ang_vel = None
    with pytest.raises(ValueError, match="reward term 'spin' needs base_ang_vel"):
        RewardFunction(config)(s, np.zeros(12), np.zeros(12))
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=r"reward\.terms\.1\.kind: Input should be 'upright'"):
        parse_robot_config(data)


def test_gates_multiply_clipped_values_or_with_a_threshold_all_or_nothing():
    assert gate_factor([0.5, 2.0, 0.8], None) == pytest.approx(0.4)
    assert gate_factor([-0.3, 1.0], None) == 0.0
    assert gate_factor([], None) == gate_factor([], 0.9) == 1.0
    assert gate_factor([0.95, 0.9], 0.9) == 1.0
    assert gate_factor([0.95, 0.89], 0.9) == 0.0


def test_a_threshold_gate_pays_the_whole_speed_term_once_the_posture_is_good_enough():
    data = yaml.safe_load(resolve_config_path("a1_sim").read_text())
    for term in data["reward"]["terms"][1:]:
        term["gate_threshold"] = 0.5
    config = parse_robot_config(data)
    reward = RewardFunction(config)
    # Every posture term 0.8 (mean error 0.1 rad of tolerance 0.5): speed pays in full, not x 0.8^3.
    bent = signals(config, joint_offset=np.full(12, 0.1), vx=0.5)
    _, parts = reward(bent, np.zeros(12), np.zeros(12))
    assert parts["forward_velocity"] == pytest.approx(5.0)
    assert parts["knee_posture"] == pytest.approx(0.8)
    # Past the threshold (posture 0.4 < 0.5) speed earns nothing.
    _, parts = reward(signals(config, joint_offset=np.full(12, 0.3), vx=0.5), np.zeros(12), np.zeros(12))
    assert parts["forward_velocity"] == 0.0 and parts["knee_posture"] == pytest.approx(0.4)
