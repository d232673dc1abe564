"""Observation terms (a registry: name → width and getter) and the config-driven observation builder.

Adding a term is one entry in :data:`OBSERVATION_TERMS`: the robot config then accepts its
name, :class:`ObservationBuilder` reads it and the policy spec lists it with its width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from dreamer_core.robots.signals import RobotSignals, projected_gravity, roll_pitch, yaw

if TYPE_CHECKING:
    from dreamer_core.robots.config import RobotConfig


@dataclass(frozen=True)
class ObservationTermKind:
    """How one observation term is sized and read."""

    # Number of values for a robot config (e.g. one per joint).
    width: Callable[[RobotConfig], int]
    # Raw values (before the config's scale) from the tick's signals, the previous action, the default
    # joint pose and the base gait's cycle angle.
    read: Callable[[RobotSignals, np.ndarray, np.ndarray, float], ArrayLike]
    # A RobotSignals field that exists only when a topic provides it (the config checks that topic).
    signal: str | None = None
    # Extra requirement on the config: returns 'key.path: problem' or None.
    check: Callable[[RobotConfig], str | None] | None = None


def _joint_offset(s: RobotSignals, prev_action: np.ndarray, default: np.ndarray, phase: float) -> np.ndarray:
    joint_pos = np.asarray(s.joint_pos, dtype=np.float64)
    if joint_pos.shape != default.shape:
        raise ValueError(f"observation term 'joint_pos': expected {default.size} values, got shape {joint_pos.shape}")
    return joint_pos - default


def _quat(s: RobotSignals) -> np.ndarray:
    quat = np.asarray(s.base_quat, dtype=np.float64)
    if quat.shape != (4,) or not np.all(np.isfinite(quat)):
        raise ValueError(f"base_quat: expected 4 finite values (w, x, y, z), got {quat}")
    return quat


def _required(value, name: str):
    if value is None:
        raise ValueError(f"observation term {name!r}: the signal is missing (is its topic publishing?)")
    return value


def _per_joint(config: RobotConfig) -> int:
    return config.act_dim


# Term values are documented in docs/robot_config.md ("Observation terms").
OBSERVATION_TERMS: dict[str, ObservationTermKind] = {
    "joint_pos": ObservationTermKind(_per_joint, _joint_offset),
    "joint_vel": ObservationTermKind(_per_joint, lambda s, prev, default, phase: s.joint_vel),
    "base_ang_vel": ObservationTermKind(lambda config: 3, lambda s, prev, default, phase: s.base_ang_vel),
    "projected_gravity": ObservationTermKind(
        lambda config: 3, lambda s, prev, default, phase: projected_gravity(_quat(s))),
    "roll_pitch": ObservationTermKind(lambda config: 2, lambda s, prev, default, phase: roll_pitch(_quat(s))),
    "prev_action": ObservationTermKind(_per_joint, lambda s, prev, default, phase: prev),
    "foot_contacts": ObservationTermKind(
        lambda config: len(config.feet), lambda s, prev, default, phase: _required(s.foot_contacts, "foot_contacts"),
        signal="foot_contacts",
        check=lambda config: None if config.feet else "feet: the foot_contacts observation needs the list of feet"),
    # (sin, cos) of the yaw since the episode began (the controller's episode frame).
    "heading": ObservationTermKind(
        lambda config: 2, lambda s, prev, default, phase: (np.sin(yaw(_quat(s))), np.cos(yaw(_quat(s))))),
    "gait_phase": ObservationTermKind(
        lambda config: 2, lambda s, prev, default, phase: (np.sin(phase), np.cos(phase))),
    "base_lin_vel": ObservationTermKind(
        lambda config: 3, lambda s, prev, default, phase: _required(s.base_lin_vel, "base_lin_vel"),
        signal="base_lin_vel"),
}


class ObservationBuilder:
    """Turns :class:`RobotSignals` plus the previous action into a float32 observation.

    Term values (before ``scale``): ``joint_pos`` is the offset from the default
    pose, ``prev_action`` the normalised action executed on the previous tick,
    ``gait_phase`` (sin, cos) of the base gait's cycle angle, the rest are the
    signals as documented in docs/robot_config.md.
    """

    def __init__(self, config: RobotConfig):
        self.config = config
        self._default = np.array([j.default for j in config.joints])
        self._terms = [(t.name, OBSERVATION_TERMS[t.name].read, t.scale) for t in config.observation]
        self._layout: list[tuple[str, slice]] = []
        start = 0
        for name, width in config.observation_layout():
            self._layout.append((name, slice(start, start + width)))
            start += width
        self.obs_dim = start

    def layout(self) -> list[tuple[str, slice]]:
        """(term name, slice of the observation vector) in order."""
        return list(self._layout)

    def build(self, signals: RobotSignals, prev_action: np.ndarray, phase: float = 0.0) -> np.ndarray:
        """Observation vector [obs_dim] float32; ValueError naming the term on bad input. ``phase`` is
        the base gait's cycle angle of the coming action (:attr:`ActionMapper.phase`)."""
        out = np.empty(self.obs_dim, dtype=np.float32)
        for (name, read, scale), (_, where) in zip(self._terms, self._layout, strict=True):
            value = np.asarray(read(signals, prev_action, self._default, phase), dtype=np.float64)
            width = where.stop - where.start
            if value.shape != (width,):
                raise ValueError(
                    f"observation term {name!r}: expected {width} values, got shape {value.shape}"
                )
            out[where] = value * scale
        if not np.isfinite(out).all():
            bad = [name for name, where in self._layout if not np.isfinite(out[where]).all()]
            raise ValueError(f"observation terms {bad}: non-finite input (or overflow after scaling)")
        return out
