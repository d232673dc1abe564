"""Why a tick held the robot: named faults, and their counts for diagnostics.

Every reason the control loop refuses to let the policy act has a stable name
(operators alert on them; docs/nodes.md lists the same). A fault never stops the
loop: the tick sends the safe command and the next tick checks again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

# Name -> meaning. `tick_exception:<stage>` is a family: an unexpected exception in that stage.
FAULTS: dict[str, str] = {
    "estop": "the e-stop is latched",
    "stale_sensor": "no reading yet from a required topic, or the oldest required reading is too old",
    "joint_names": "JointState names are not exactly the config's joints (missing, extra, renamed or repeated)",
    "joint_state_length": "JointState position/velocity/effort arrays do not match its names",
    "contact_count": "the foot-contact array does not have one value per configured foot",
    "signal_shape": "a signal array has the wrong length",
    "stamp_out_of_order": "a header stamp is older than one already received on that topic",
    "stamp_in_future": "a header stamp is ahead of the node clock by more than safety.sensor_bounds.max_stamp_lead_s",
    "nonfinite_sensor": "NaN or inf in a reading (or a stamp)",
    "quaternion_norm": "the IMU orientation is not a unit quaternion (all zeros included)",
    "joint_position_limit": "a measured joint position lies outside the joint limits by more than the tolerance",
    "joint_velocity_limit": "a measured joint velocity exceeds safety.sensor_bounds.max_joint_velocity",
    "joint_effort_limit": "a measured joint effort exceeds safety.sensor_bounds.max_joint_effort",
    "angular_velocity_limit": "the IMU angular rate exceeds safety.sensor_bounds.max_angular_velocity",
    "linear_velocity_limit": "the odometry velocity exceeds safety.sensor_bounds.max_linear_velocity",
    "contact_value": "a foot-contact value lies outside [0, 1]",
    "tilt": "the base tilt exceeds safety.max_tilt_rad (a fall: the episode ends as terminal)",
    "nonfinite_action": "the policy returned NaN or inf",
    "action_shape": "the policy returned an action of the wrong length",
    "tick_exception": "an unexpected exception in a stage of the tick (named after the colon)",
}

# Stages of a tick, in order; an exception in one is the fault `tick_exception:<stage>`.
STAGES = ("sensors", "safety", "swap", "observation", "reward", "policy", "mapping")


@dataclass(frozen=True)
class Fault:
    """A named reason to hold, with the specifics for the log (which joint, which value)."""

    name: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.name.split(":", 1)[0] not in FAULTS:
            raise ValueError(f"unknown fault {self.name!r}; add it to FAULTS")


class SensorFault(ValueError):
    """A reading that must not reach the policy; carries the :class:`Fault` to report."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.fault = Fault(name, detail)


class FaultCounter:
    """Ticks spent in each fault and the newest detail, written by the control thread and read by others."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._last: Fault | None = None

    def count(self, fault: Fault) -> None:
        with self._lock:
            self._counts[fault.name] = self._counts.get(fault.name, 0) + 1
            self._last = fault

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def last(self) -> Fault | None:
        return self._last
