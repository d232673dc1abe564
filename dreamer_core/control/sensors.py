"""From the newest sensor messages to :class:`RobotSignals`, or a named fault.

The control node copies message fields into :class:`SensorReadings` without any
check; :class:`SignalAssembler` does every structural check (joint names, array
lengths, header stamps) inside the tick's guard, so a malformed message is a
named fault and a held command, never a dead control thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dreamer_core.control.faults import SensorFault
from dreamer_core.robots.signals import RobotSignals


class LatestMessages:
    """The newest message per sensor topic with its monotonic receive time (subscriptions write, the loop reads)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[object, float]] = {}

    def put(self, key: str, msg) -> None:
        with self._lock:
            self._latest[key] = (msg, time.monotonic())

    def snapshot(self) -> dict[str, tuple[object, float]]:
        with self._lock:
            return dict(self._latest)


@dataclass
class SensorReadings:
    """The newest message of each sensor topic, field for field, as the node received them."""

    joint_names: Sequence[str]
    joint_position: Sequence[float]
    joint_velocity: Sequence[float]
    joint_effort: Sequence[float]  # empty when the driver sends no efforts
    orientation_xyzw: Sequence[float]  # sensor_msgs/Imu order
    angular_velocity: Sequence[float]
    linear_velocity: Sequence[float] | None = None  # odometry twist, when topics.odometry is set
    foot_contacts: Sequence[float] | None = None  # when topics.foot_contacts is set
    header_stamps: dict[str, float] = field(default_factory=dict)  # topic -> header stamp (node clock, s)
    clock: float = 0.0  # node clock (the header stamps' time base) when the readings were taken
    received: float = 0.0  # monotonic receive time of the oldest required reading


class SignalAssembler:
    """Checks :class:`SensorReadings` against the robot config and reorders joints by name.

    Stateful: it remembers the newest header stamp per topic, so a message older than
    one already seen (a replay, a second publisher) is caught.
    """

    def __init__(self, joint_names: Sequence[str], num_feet: int, max_stamp_lead_s: float):
        self.joint_names = tuple(joint_names)
        self.num_feet = num_feet
        self.max_stamp_lead_s = max_stamp_lead_s
        self._names: tuple[str, ...] | None = None
        self._index: np.ndarray | None = None
        self._newest_stamp: dict[str, float] = {}

    def assemble(self, r: SensorReadings) -> RobotSignals:
        """The signals in config joint order; :class:`SensorFault` naming the first problem."""
        index = self._joint_index(r.joint_names)
        count = len(self.joint_names)
        pos, vel, effort = (_vector(v, name) for v, name in (
            (r.joint_position, "joint position"), (r.joint_velocity, "joint velocity"),
            (r.joint_effort, "joint effort")))
        if pos.size != count or vel.size != count or effort.size not in (0, count):
            raise SensorFault("joint_state_length", f"JointState has {count} names but {pos.size} positions, "
                                                    f"{vel.size} velocities and {effort.size} efforts")
        contacts = None
        if r.foot_contacts is not None:
            contacts = _vector(r.foot_contacts, "foot contacts")
            if contacts.size != self.num_feet:
                raise SensorFault("contact_count",
                                  f"{contacts.size} foot-contact values for {self.num_feet} configured feet")
        self._check_stamps(r.header_stamps, r.clock)
        quat = _vector(r.orientation_xyzw, "orientation")
        return RobotSignals(
            joint_pos=pos[index], joint_vel=vel[index],
            joint_effort=effort[index] if effort.size else None,
            base_quat=quat[[3, 0, 1, 2]] if quat.size == 4 else quat,  # ROS orders x, y, z, w
            base_ang_vel=_vector(r.angular_velocity, "angular velocity"),
            base_lin_vel=None if r.linear_velocity is None else _vector(r.linear_velocity, "linear velocity"),
            foot_contacts=contacts, stamp=float(r.received),
        )

    def _joint_index(self, names: Sequence[str]) -> np.ndarray:
        names = tuple(names)
        if names != self._names:
            if sorted(names) != sorted(self.joint_names):
                missing = sorted(set(self.joint_names) - set(names))
                unknown = sorted(set(names) - set(self.joint_names))
                repeated = sorted({n for n in names if names.count(n) > 1})
                raise SensorFault("joint_names", f"JointState lacks {missing}, has unknown {unknown}, "
                                                 f"repeats {repeated}; the robot config's joints are "
                                                 f"{list(self.joint_names)}")
            self._index = np.array([names.index(j) for j in self.joint_names])
            self._names = names
        return self._index

    def _check_stamps(self, stamps: dict[str, float], clock: float) -> None:
        for topic, stamp in stamps.items():
            if not math.isfinite(stamp) or not math.isfinite(clock):
                raise SensorFault("nonfinite_sensor", f"{topic} header stamp {stamp}, clock {clock}")
            if stamp > clock + self.max_stamp_lead_s:
                raise SensorFault("stamp_in_future", f"{topic} stamped {stamp - clock:.3f} s ahead of the node clock")
            newest = self._newest_stamp.get(topic, -math.inf)
            if stamp < newest:
                raise SensorFault("stamp_out_of_order",
                                  f"{topic} stamped {newest - stamp:.3f} s before one already received")
            self._newest_stamp[topic] = stamp


def _vector(values, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise SensorFault("signal_shape", f"{name} is not a numeric array ({exc})") from None
