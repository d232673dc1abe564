"""Reward terms (each a short pure function) and the config-driven reward.

Formulas are documented in docs/robot_config.md ("Reward terms"). A term's
contribution is ``weight * value * prod(clip(value_g, 0, 1) for g in gate)``:
gating makes posture count only once upright and speed only once the posture
is right (the structure of the DayDreamer A1 walking reward).
"""

from __future__ import annotations

import math

import numpy as np

from dreamer_core.robots.config import RobotConfig
from dreamer_core.robots.signals import RobotSignals, cos_tilt, tilt


def upright(base_quat: np.ndarray) -> float:
    """(cos(tilt) + 1) / 2: 1 level, 0.5 on its side, 0 upside down."""
    return (cos_tilt(base_quat) + 1.0) / 2.0


def joint_posture(joint_pos: np.ndarray, target: np.ndarray, tolerance: float) -> float:
    """max(0, 1 - mean|q - q*| / tolerance): 1 at the target pose."""
    error = float(np.abs(np.asarray(joint_pos) - target).sum()) / len(target)
    return max(0.0, 1.0 - error / tolerance)


def forward_velocity(base_lin_vel: np.ndarray, max_velocity: float) -> float:
    """clip(v_x / max_velocity, -1, 1), v_x the body-frame forward speed."""
    return float(np.clip(base_lin_vel[0] / max_velocity, -1.0, 1.0))


def action_rate(action: np.ndarray, prev_action: np.ndarray) -> float:
    """sum((a - a_prev)^2): give it a negative weight to penalise jerky actions."""
    return float(np.sum(np.square(np.asarray(action) - np.asarray(prev_action))))


def joint_velocity(joint_vel: np.ndarray) -> float:
    """sum(qdot^2): give it a negative weight to penalise fast joints."""
    return float(np.sum(np.square(joint_vel)))


class RewardFunction:
    """The reward of a robot config, computed from the same signals on the sim and the robot."""

    def __init__(self, config: RobotConfig):
        self.config = config
        index = {name: i for i, name in enumerate(config.joint_names)}
        defaults = {j.name: j.default for j in config.joints}
        self._terms = []
        for term in config.reward.terms:
            joints = np.array([index[j] for j in term.joints or []], dtype=np.int64)
            names = term.joints or []
            target = np.array(term.target if term.target is not None else [defaults[j] for j in names])
            self._terms.append((term, joints, target))

    def __call__(
        self, signals: RobotSignals, action: np.ndarray, prev_action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        """Total reward and each term's weighted, gated contribution."""
        values: dict[str, float] = {}
        parts: dict[str, float] = {}
        for term, joints, target in self._terms:
            value = self._value(term, joints, target, signals, action, prev_action)
            if not math.isfinite(value):
                raise ValueError(f"reward term {term.name!r}: non-finite value from the signals")
            values[term.name] = value
            gate = 1.0
            for name in term.gate:
                gate *= min(1.0, max(0.0, values[name]))
            parts[term.name] = term.weight * value * gate
        return float(sum(parts.values())), parts

    def is_fallen(self, signals: RobotSignals) -> bool:
        """Tilt beyond ``safety.max_tilt_rad`` (a terminal state)."""
        return tilt(signals.base_quat) > self.config.safety.max_tilt_rad

    @staticmethod
    def _value(term, joints, target, s: RobotSignals, action, prev_action) -> float:
        if term.kind == "upright":
            return upright(s.base_quat)
        if term.kind == "joint_posture":
            return joint_posture(np.asarray(s.joint_pos)[joints], target, term.tolerance)
        if term.kind == "forward_velocity":
            if s.base_lin_vel is None:
                raise ValueError(f"reward term {term.name!r} needs base_lin_vel (odometry), which is missing")
            return forward_velocity(s.base_lin_vel, term.max_velocity)
        if term.kind == "action_rate":
            return action_rate(action, prev_action)
        if term.kind == "joint_velocity":
            return joint_velocity(s.joint_vel)
        if term.kind == "alive":
            return 1.0
        raise ValueError(f"unknown reward kind {term.kind!r}")
