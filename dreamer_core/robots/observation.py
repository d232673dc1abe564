"""Build the policy observation vector from raw signals, in robot-config order."""

from __future__ import annotations

import numpy as np

from dreamer_core.robots.config import RobotConfig
from dreamer_core.robots.signals import RobotSignals, projected_gravity, roll_pitch


class ObservationBuilder:
    """Turns :class:`RobotSignals` plus the previous action into a float32 observation.

    Term values (before ``scale``): ``joint_pos`` is the offset from the default
    pose, ``prev_action`` the normalised policy action of the previous tick, the
    rest are the signals as documented in docs/robot_config.md.
    """

    def __init__(self, config: RobotConfig):
        self.config = config
        self._default = np.array([j.default for j in config.joints])
        self._terms = [(t.name, t.scale) for t in config.observation]
        self._layout: list[tuple[str, slice]] = []
        start = 0
        for name, width in config.observation_layout():
            self._layout.append((name, slice(start, start + width)))
            start += width
        self.obs_dim = start

    def layout(self) -> list[tuple[str, slice]]:
        """(term name, slice of the observation vector) in order."""
        return list(self._layout)

    def build(self, signals: RobotSignals, prev_action: np.ndarray) -> np.ndarray:
        """Observation vector [obs_dim] float32; ValueError naming the term on bad input."""
        out = np.empty(self.obs_dim, dtype=np.float32)
        for (name, scale), (_, where) in zip(self._terms, self._layout, strict=True):
            value = np.asarray(self._raw(name, signals, prev_action), dtype=np.float64)
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

    def _raw(self, name: str, s: RobotSignals, prev_action: np.ndarray):
        if name == "joint_pos":
            joint_pos = np.asarray(s.joint_pos, dtype=np.float64)
            if joint_pos.shape != self._default.shape:
                raise ValueError(f"observation term 'joint_pos': expected {self._default.size} values, "
                                 f"got shape {joint_pos.shape}")
            return joint_pos - self._default
        if name == "joint_vel":
            return s.joint_vel
        if name == "base_ang_vel":
            return s.base_ang_vel
        if name == "projected_gravity":
            return projected_gravity(_quat(s))
        if name == "roll_pitch":
            return roll_pitch(_quat(s))
        if name == "prev_action":
            return prev_action
        if name == "foot_contacts":
            return _required(s.foot_contacts, name)
        if name == "base_lin_vel":
            return _required(s.base_lin_vel, name)
        raise ValueError(f"unknown observation term {name!r}")


def _quat(s: RobotSignals) -> np.ndarray:
    quat = np.asarray(s.base_quat, dtype=np.float64)
    if quat.shape != (4,) or not np.all(np.isfinite(quat)):
        raise ValueError(f"base_quat: expected 4 finite values (w, x, y, z), got {quat}")
    return quat


def _required(value, name: str):
    if value is None:
        raise ValueError(f"observation term {name!r}: the signal is missing (is its topic publishing?)")
    return value
