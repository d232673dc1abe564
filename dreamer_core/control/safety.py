"""Onboard safety: watchdog, e-stop, sensor plausibility, tilt, joint and rate limits.

Everything here is cheap numpy on a handful of floats: it runs on every tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dreamer_core.control.faults import Fault
from dreamer_core.robots.signals import RobotSignals, tilt


@dataclass(frozen=True)
class SafetyLimits:
    """The safety numbers of a robot config, in the units the control loop uses."""

    max_tilt_rad: float
    stale_after_s: float
    lower: np.ndarray  # command limits: the joint limits minus the margin
    upper: np.ndarray
    max_target_step: float  # rad per tick
    soft_start_ticks: int
    measured_lower: np.ndarray  # plausible measured positions: the joint limits plus the tolerance
    measured_upper: np.ndarray
    num_feet: int
    quaternion_norm_tolerance: float
    max_joint_velocity: float
    max_joint_effort: float  # inf: not checked
    max_angular_velocity: float
    max_linear_velocity: float

    @classmethod
    def from_config(cls, config) -> SafetyLimits:
        period = 1.0 / config.control_rate_hz
        safety, bounds = config.safety, config.safety.sensor_bounds
        lower = np.array([j.lower for j in config.joints], dtype=np.float64)
        upper = np.array([j.upper for j in config.joints], dtype=np.float64)
        margin, tolerance = safety.joint_limit_margin_rad, bounds.joint_position_tolerance_rad
        return cls(
            max_tilt_rad=safety.max_tilt_rad,
            stale_after_s=safety.stale_sensor_periods * period,
            lower=lower + margin,
            upper=upper - margin,
            max_target_step=safety.max_action_rate * period,
            soft_start_ticks=max(1, round(safety.soft_start_seconds / period)),
            measured_lower=lower - tolerance,
            measured_upper=upper + tolerance,
            num_feet=len(config.feet),
            quaternion_norm_tolerance=bounds.quaternion_norm_tolerance,
            max_joint_velocity=bounds.max_joint_velocity,
            max_joint_effort=math.inf if bounds.max_joint_effort is None else bounds.max_joint_effort,
            max_angular_velocity=bounds.max_angular_velocity,
            max_linear_velocity=bounds.max_linear_velocity,
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

    def fault(self, signals: RobotSignals | None, now: float) -> Fault | None:
        """The reason the policy must not act now, or None when all is well."""
        if self.estop_reason is not None:
            return Fault("estop", self.estop_reason)
        if signals is None:
            return Fault("stale_sensor", "no reading yet from a required topic")
        age = now - signals.stamp
        if not age <= self.limits.stale_after_s:  # also catches a NaN stamp
            return Fault("stale_sensor", f"oldest required reading is {age:.3f} s old")
        return self.implausible(signals) or self._tilt(signals)

    def implausible(self, s: RobotSignals) -> Fault | None:
        """The first sensor field that is malformed or outside its plausibility bound."""
        lim = self.limits
        joints = lim.lower.size
        fields = {"joint_pos": (s.joint_pos, joints), "joint_vel": (s.joint_vel, joints),
                  "base_quat": (s.base_quat, 4), "base_ang_vel": (s.base_ang_vel, 3)}
        for name, value, width in (("joint_effort", s.joint_effort, joints), ("base_lin_vel", s.base_lin_vel, 3),
                                   ("foot_contacts", s.foot_contacts, lim.num_feet)):
            if value is not None:
                fields[name] = (value, width)
        arrays = {}
        for name, (value, width) in fields.items():
            array = np.asarray(value, dtype=np.float64)
            if array.shape != (width,):
                kind = "contact_count" if name == "foot_contacts" else "signal_shape"
                return Fault(kind, f"{name} has shape {array.shape}, expected ({width},)")
            arrays[name] = array
        for name, array in arrays.items():
            if not np.isfinite(array).all():
                return Fault("nonfinite_sensor", f"{name} = {array.tolist()}")
        norm = float(np.linalg.norm(arrays["base_quat"]))
        if abs(norm - 1.0) > lim.quaternion_norm_tolerance:
            return Fault("quaternion_norm", f"IMU orientation norm {norm:.4g}")
        pos = arrays["joint_pos"]
        outside = (pos < lim.measured_lower) | (pos > lim.measured_upper)
        if outside.any():
            i = int(np.argmax(outside))
            return Fault("joint_position_limit", f"joint {i} measured at {pos[i]:.4g} rad")
        checks = (("joint_vel", "joint_velocity_limit", lim.max_joint_velocity),
                  ("joint_effort", "joint_effort_limit", lim.max_joint_effort),
                  ("base_ang_vel", "angular_velocity_limit", lim.max_angular_velocity),
                  ("base_lin_vel", "linear_velocity_limit", lim.max_linear_velocity))
        for name, fault, bound in checks:
            if name in arrays and np.abs(arrays[name]).max() > bound:
                i = int(np.argmax(np.abs(arrays[name])))
                return Fault(fault, f"{name}[{i}] = {arrays[name][i]:.4g}, bound {bound:g}")
        contacts = arrays.get("foot_contacts")
        if contacts is not None and ((contacts < 0.0) | (contacts > 1.0)).any():
            return Fault("contact_value", f"foot_contacts = {contacts.tolist()}, expected values in [0, 1]")
        return None

    def _tilt(self, signals: RobotSignals) -> Fault | None:
        angle = tilt(signals.base_quat)
        if angle > self.limits.max_tilt_rad:
            return Fault("tilt", f"base tilted {angle:.2f} rad")
        return None

    def clip_targets(self, targets: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Joint-limit and rate-limit position targets."""
        if previous is not None:
            step = self.limits.max_target_step
            targets = np.clip(targets, previous - step, previous + step)
        return np.clip(targets, self.limits.lower, self.limits.upper)

    def hold_targets(self, signals: RobotSignals | None) -> np.ndarray | None:
        """The safe command: hold the measured pose (inside the limits).

        None when there is no plausible measurement: then the caller keeps the last
        command, which is safer than commanding a pose we cannot see.
        """
        if signals is None:
            return None
        pos = np.asarray(signals.joint_pos, dtype=np.float64)
        if pos.shape != self.limits.lower.shape or not np.isfinite(pos).all():
            return None
        if ((pos < self.limits.measured_lower) | (pos > self.limits.measured_upper)).any():
            return None
        return np.clip(pos, self.limits.lower, self.limits.upper)
