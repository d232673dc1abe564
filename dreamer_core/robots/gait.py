"""The open-loop base gait of ``action.kind: base_gait``: joint offsets as a function of time.

A policy then acts in residuals around a periodic gait (a trot, say) instead of around a fixed
pose: action 0 walks the gait, and the gait's phase is observed (``gait_phase``) so that the
residual can depend on where in the cycle the leg is. Frequency and each joint's amplitude and
phase are config (docs/robot_config.md#action).
"""

from __future__ import annotations

import math

import numpy as np

from dreamer_core.robots.config import RobotConfig


class BaseGait:
    """Joint offsets [J] (rad) of the configured gait at control step ``k`` of an episode (zeros
    for the other action kinds)."""

    def __init__(self, config: RobotConfig):
        gait = config.action.gait
        index = {name: i for i, name in enumerate(config.joint_names)}
        self.frequency = gait.frequency_hz if gait is not None else 0.0
        self.dt = config.dt
        joints = gait.joints if gait is not None else []
        self._index = np.array([index[j.name] for j in joints], dtype=np.int64)
        self._amplitude = np.array([j.amplitude for j in joints])
        self._phase = np.array([j.phase for j in joints])
        self._rectified = np.array([j.rectified for j in joints], dtype=bool)
        self._width = config.act_dim

    def phase(self, step: int) -> float:
        """The cycle angle (rad, in [0, 2π)) at control step ``step``."""
        return 2.0 * math.pi * ((self.frequency * step * self.dt) % 1.0)

    def offsets(self, step: int) -> np.ndarray:
        """Joint offsets [J] (rad) at control step ``step``."""
        out = np.zeros(self._width)
        wave = np.sin(2.0 * math.pi * (self.frequency * step * self.dt + self._phase))
        out[self._index] = self._amplitude * np.where(self._rectified, np.maximum(wave, 0.0), wave)
        return out
