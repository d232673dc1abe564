"""Onboard safety (docs/architecture.md#onboard-safety): watchdog, tilt, e-stop, finiteness, joint and rate limits.

Everything here is cheap numpy on a handful of floats: it runs on every tick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamer_core.robots.signals import RobotSignals, tilt


@dataclass(frozen=True)
class SafetyLimits:
    """The safety numbers of a robot config, in the units the control loop uses."""

    max_tilt_rad: float
    stale_after_s: float
    lower: np.ndarray
    upper: np.ndarray
    max_target_step: float  # rad per tick
    soft_start_ticks: int

    @classmethod
    def from_config(cls, config) -> SafetyLimits:
        period = 1.0 / config.control_rate_hz
        safety = config.safety
        lower = np.array([j.lower for j in config.joints], dtype=np.float64) + safety.joint_limit_margin_rad
        upper = np.array([j.upper for j in config.joints], dtype=np.float64) - safety.joint_limit_margin_rad
        return cls(
            max_tilt_rad=safety.max_tilt_rad,
            stale_after_s=safety.stale_sensor_periods * period,
            lower=lower,
            upper=upper,
            max_target_step=safety.max_action_rate * period,
            soft_start_ticks=max(1, round(safety.soft_start_seconds / period)),
        )


class SafetyMonitor:
    """Decides, each tick, whether the policy may command the robot, and shapes its targets."""

    def __init__(self, config):
        self.limits = SafetyLimits.from_config(config)
        self.estop_reason: str | None = None

    def latch_estop(self, reason: str = "e-stop requested") -> None:
        """Latch the e-stop: only `clear_estop` releases it, never a later `False`."""
        if self.estop_reason is None:
            self.estop_reason = reason

    def clear_estop(self) -> None:
        self.estop_reason = None

    def fault(self, signals: RobotSignals | None, now: float) -> str | None:
        """The reason the policy must not act now, or None when all is well."""
        if self.estop_reason is not None:
            return "estop"
        if signals is None or now - signals.stamp > self.limits.stale_after_s:
            return "stale_sensor"
        if not signals_finite(signals):
            return "nonfinite_sensor"
        if tilt(signals.base_quat) > self.limits.max_tilt_rad:
            return "tilt"
        return None

    def clip_targets(self, targets: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Joint-limit and rate-limit position targets."""
        if previous is not None:
            step = self.limits.max_target_step
            targets = np.clip(targets, previous - step, previous + step)
        return np.clip(targets, self.limits.lower, self.limits.upper)

    def hold_targets(self, signals: RobotSignals | None) -> np.ndarray | None:
        """The safe command: hold the last measured pose (inside the limits).

        None when the robot has never been measured: then the driver keeps its own
        hold, which is safer than commanding a pose we cannot see.
        """
        if signals is None or not np.all(np.isfinite(signals.joint_pos)):
            return None
        return np.clip(np.asarray(signals.joint_pos, dtype=np.float64), self.limits.lower, self.limits.upper)


def signals_finite(signals: RobotSignals) -> bool:
    parts = [signals.joint_pos, signals.joint_vel, signals.base_quat, signals.base_ang_vel]
    parts += [p for p in (signals.base_lin_vel, signals.foot_contacts) if p is not None]
    return all(np.all(np.isfinite(np.asarray(p, dtype=np.float64))) for p in parts)
