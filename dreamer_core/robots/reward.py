"""Reward terms (each a short pure function), the reward kinds (a registry: name → signals
read and function) and the config-driven reward.

Formulas are documented in docs/robot_config.md ("Reward terms"). A term's
contribution is ``weight * value * prod(clip(value_g, 0, 1) for g in gate)``, or with
``gate_threshold`` ``weight * value * all(value_g >= threshold)``: gating makes posture
count only once upright and speed only once the posture is right (the structure of the
DayDreamer A1 walking reward). Adding a kind is one
entry in :data:`REWARD_KINDS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dreamer_core.robots.signals import RobotSignals, cos_tilt, tilt, yaw

if TYPE_CHECKING:
    from dreamer_core.robots.config import RewardTerm, RobotConfig

# value(signals, action, prev_action) of one configured term.
TermValue = Callable[[RobotSignals, np.ndarray, np.ndarray], float]


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


def gate_factor(gate_values: list[float], threshold: float | None) -> float:
    """What the gate terms multiply a term by: the product of their values clipped to [0, 1], or
    with a ``threshold`` 1 when every one reaches it and 0 otherwise."""
    if threshold is not None:
        return float(all(value >= threshold for value in gate_values))
    return math.prod(min(1.0, max(0.0, value)) for value in gate_values)


def heading(base_quat: np.ndarray, tolerance: float) -> float:
    """max(0, 1 - |yaw| / tolerance): 1 facing where the episode began (the controller's episode frame)."""
    return max(0.0, 1.0 - abs(yaw(base_quat)) / tolerance)


def action_rate(action: np.ndarray, prev_action: np.ndarray) -> float:
    """sum((a - a_prev)^2): give it a negative weight to penalise jerky actions."""
    return float(np.sum(np.square(np.asarray(action) - np.asarray(prev_action))))


def joint_velocity(joint_vel: np.ndarray) -> float:
    """sum(qdot^2): give it a negative weight to penalise fast joints."""
    return float(np.sum(np.square(joint_vel)))


@dataclass(frozen=True)
class RewardKind:
    """One kind of reward term."""

    # RobotSignals fields it reads (the config checks that optional ones have their topic, and a
    # tick where one is missing is refused, never scored as zero).
    signals: tuple[str, ...]
    # Builds the term's value function from its config entry (parameters are resolved once here).
    make: Callable[[RewardTerm, RobotConfig], TermValue]
    # Whether the term reads its ``joints``/``target`` keys, and checks of those ('key: problem').
    uses_joints: bool = False
    check: Callable[[RewardTerm, RobotConfig], Iterator[str]] | None = None


def _posture(term: RewardTerm, config: RobotConfig) -> TermValue:
    index = {name: i for i, name in enumerate(config.joint_names)}
    defaults = {j.name: j.default for j in config.joints}
    joints = np.array([index[j] for j in term.joints], dtype=np.int64)
    target = np.array(term.target if term.target is not None else [defaults[j] for j in term.joints])
    return lambda s, action, prev: joint_posture(np.asarray(s.joint_pos)[joints], target, term.tolerance)


def _posture_problems(term: RewardTerm, config: RobotConfig) -> Iterator[str]:
    if not term.joints:
        yield "joints: joint_posture needs a non-empty list of joints"
        return
    for j, joint in enumerate(term.joints):
        if joint not in config.joint_names:
            yield f"joints.{j}: unknown joint {joint!r} (joints are {config.joint_names})"
    if term.target is not None and len(term.target) != len(term.joints):
        yield f"target: has {len(term.target)} values for {len(term.joints)} joints"


def _reads(value: Callable[[RewardTerm, RobotSignals, np.ndarray, np.ndarray], float]):
    """``make`` for a kind that needs nothing resolved in advance: ``value(term, signals, action, prev)``."""
    return lambda term, config: lambda s, action, prev: value(term, s, action, prev)


REWARD_KINDS: dict[str, RewardKind] = {
    "upright": RewardKind(("base_quat",), _reads(lambda term, s, action, prev: upright(s.base_quat))),
    "joint_posture": RewardKind(("joint_pos",), _posture, uses_joints=True, check=_posture_problems),
    "forward_velocity": RewardKind(
        ("base_lin_vel",), _reads(lambda term, s, action, prev: forward_velocity(s.base_lin_vel, term.max_velocity))),
    "heading": RewardKind(("base_quat",), _reads(lambda term, s, action, prev: heading(s.base_quat, term.tolerance))),
    "action_rate": RewardKind((), _reads(lambda term, s, action, prev: action_rate(action, prev))),
    "joint_velocity": RewardKind(("joint_vel",), _reads(lambda term, s, action, prev: joint_velocity(s.joint_vel))),
    "alive": RewardKind((), _reads(lambda term, s, action, prev: 1.0)),
}


class RewardFunction:
    """The reward of a robot config, computed from the same signals on the sim and the robot."""

    def __init__(self, config: RobotConfig):
        self.config = config
        self._terms = [(term, REWARD_KINDS[term.kind].signals, REWARD_KINDS[term.kind].make(term, config))
                       for term in config.reward.terms]

    def __call__(
        self, signals: RobotSignals, action: np.ndarray, prev_action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        """Total reward and each term's weighted, gated contribution."""
        values: dict[str, float] = {}
        parts: dict[str, float] = {}
        for term, needs, value_of in self._terms:
            for signal in needs:
                if getattr(signals, signal) is None:
                    raise ValueError(f"reward term {term.name!r} needs {signal}, which is missing "
                                     "(is its topic publishing?)")
            value = value_of(signals, action, prev_action)
            if not math.isfinite(value):
                raise ValueError(f"reward term {term.name!r}: non-finite value from the signals")
            values[term.name] = value
            parts[term.name] = term.weight * value * gate_factor([values[name] for name in term.gate],
                                                                 term.gate_threshold)
        return float(sum(parts.values())), parts

    def is_fallen(self, signals: RobotSignals) -> bool:
        """Tilt beyond ``safety.max_tilt_rad`` (a terminal state)."""
        return tilt(signals.base_quat) > self.config.safety.max_tilt_rad
