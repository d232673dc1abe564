"""Raw sensor readings of one control tick, shared by the simulator and the real robot.

The control node fills a :class:`RobotSignals` from JointState/Imu/Odometry
messages and the MuJoCo env fills it from its sensors, so observation and reward
code sees the same thing in both worlds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class RobotSignals:
    """Sensor readings in robot-config joint order, SI units.

    ``base_quat`` is (w, x, y, z), the rotation from the base (IMU) frame to the
    world frame, as in sensor_msgs/Imu ``orientation`` (which ROS orders x, y, z, w:
    reorder when converting). ``base_ang_vel`` and ``base_lin_vel`` are expressed in
    the base frame (x forward, y left, z up).
    """

    joint_pos: np.ndarray  # [J] rad
    joint_vel: np.ndarray  # [J] rad/s
    base_quat: np.ndarray  # [4] (w, x, y, z)
    base_ang_vel: np.ndarray  # [3] rad/s, body frame (IMU gyro)
    base_lin_vel: np.ndarray | None = None  # [3] m/s body frame, from odometry / a state estimator
    foot_contacts: np.ndarray | None = None  # [F] 1.0 = in contact
    joint_effort: np.ndarray | None = None  # [J] N·m, when the driver reports efforts
    stamp: float = 0.0  # seconds


def _unit_quat(quat: np.ndarray) -> tuple[float, float, float, float]:
    w, x, y, z = (float(v) for v in quat)
    norm = (w * w + x * x + y * y + z * z) ** 0.5
    if not norm > 0.0:
        raise ValueError(f"base_quat {quat!r} has zero norm; the IMU orientation is not valid")
    return w / norm, x / norm, y / norm, z / norm


def projected_gravity(quat: np.ndarray) -> np.ndarray:
    """Unit gravity direction (world -z) in the body frame: (0, 0, -1) when level.

    This is ``-R^T e_z`` for the body-to-world rotation R of ``quat`` (w, x, y, z),
    i.e. minus the last row of R (written out: this runs every tick).
    """
    w, x, y, z = _unit_quat(quat)
    return np.array([-2.0 * (x * z - w * y), -2.0 * (y * z + w * x), -(1.0 - 2.0 * (x * x + y * y))])


def roll_pitch(quat: np.ndarray) -> np.ndarray:
    """Roll and pitch (rad, ZYX Euler convention) of the body."""
    w, x, y, z = _unit_quat(quat)
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
    return np.array([roll, pitch])


def cos_tilt(quat: np.ndarray) -> float:
    """Cosine of the angle between the body z axis and world up (the z of the body's up axis)."""
    _, x, y, _ = _unit_quat(quat)
    return 1.0 - 2.0 * (x * x + y * y)


def tilt(quat: np.ndarray) -> float:
    """Angle (rad) between the body z axis and world up: 0 level, pi upside down."""
    return math.acos(min(1.0, max(-1.0, cos_tilt(quat))))


def yaw(quat: np.ndarray) -> float:
    """Heading (rad, ZYX Euler yaw, in [-pi, pi]) of the body."""
    w, x, y, z = _unit_quat(quat)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def without_yaw(quat: np.ndarray, origin: float) -> np.ndarray:
    """``quat`` (w, x, y, z) seen from a world frame turned by ``origin`` about z: the same tilt, the
    heading measured from ``origin`` (the controller's episode frame)."""
    c, s = math.cos(origin / 2.0), math.sin(origin / 2.0)
    w, x, y, z = _unit_quat(quat)
    # (cos(o/2), 0, 0, -sin(o/2)) * q: the inverse of the origin's rotation about z, applied first.
    return np.array([c * w + s * z, c * x + s * y, c * y - s * x, c * z - s * w])
