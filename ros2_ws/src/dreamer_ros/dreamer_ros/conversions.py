"""Translation between ROS messages and dreamer_core types. No logic beyond field mapping."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from dreamer_msgs.msg import PolicyBundle as PolicyBundleMsg
from dreamer_msgs.msg import Transition as TransitionMsg
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, JointState

from dreamer_core.deploy import PolicyBundle
from dreamer_core.robots.signals import RobotSignals
from dreamer_core.storage import Transition


class JointOrder:
    """Maps JointState name order (driver's) to robot-config order (policy's)."""

    def __init__(self, joint_names: list[str]):
        self.joint_names = list(joint_names)
        self._cached_names: tuple[str, ...] | None = None
        self._index: np.ndarray | None = None

    def reorder(self, msg: JointState) -> tuple[np.ndarray, np.ndarray]:
        names = tuple(msg.name)
        if names != self._cached_names:
            missing = [j for j in self.joint_names if j not in names]
            if missing:
                raise ValueError(
                    f"JointState lacks joints {missing}; the robot config expects {self.joint_names}"
                )
            self._index = np.array([names.index(j) for j in self.joint_names])
            self._cached_names = names
        pos = np.asarray(msg.position, dtype=np.float64)
        vel = np.asarray(msg.velocity, dtype=np.float64)
        if len(pos) != len(names) or len(vel) != len(names):
            raise ValueError(
                f"JointState has {len(names)} names but {len(pos)} positions and {len(vel)} velocities"
            )
        return pos[self._index], vel[self._index]


def signals_from_msgs(order: JointOrder, joints: JointState, imu: Imu, odom: Odometry | None,
                      contacts: list[float] | None, stamp: float) -> RobotSignals:
    pos, vel = order.reorder(joints)
    q = imu.orientation
    w = imu.angular_velocity
    lin = None
    if odom is not None:
        v = odom.twist.twist.linear
        lin = np.array([v.x, v.y, v.z])
    return RobotSignals(
        joint_pos=pos, joint_vel=vel,
        base_quat=np.array([q.w, q.x, q.y, q.z]),  # ROS orders x, y, z, w
        base_ang_vel=np.array([w.x, w.y, w.z]),
        base_lin_vel=lin,
        foot_contacts=None if contacts is None else np.asarray(contacts, dtype=np.float64),
        stamp=stamp,
    )


def transition_to_msg(t: Transition, stamp_msg) -> TransitionMsg:
    msg = TransitionMsg()
    msg.header.stamp = stamp_msg
    msg.robot_id = t.robot_id
    msg.session_id = t.session_id
    msg.seq = int(t.seq)
    msg.obs = np.asarray(t.obs, dtype=np.float32)
    msg.action = np.asarray(t.action, dtype=np.float32)
    msg.reward = float(t.reward)
    msg.is_first = bool(t.is_first)
    msg.is_last = bool(t.is_last)
    msg.is_terminal = bool(t.is_terminal)
    msg.policy_version = int(t.policy_version)
    return msg


def bundle_to_msg(b: PolicyBundle) -> PolicyBundleMsg:
    msg = PolicyBundleMsg()
    msg.version = int(b.version)
    msg.robot_id = b.robot_id
    msg.spec_hash = b.spec_hash
    msg.sha256 = b.sha256
    msg.manifest_json = b.manifest_json
    msg.onnx = bytes(b.onnx)
    msg.signature = bytes(b.signature)
    return msg


def bundle_from_msg(msg: PolicyBundleMsg) -> PolicyBundle:
    return PolicyBundle(
        version=int(msg.version), robot_id=msg.robot_id, spec_hash=msg.spec_hash, sha256=msg.sha256,
        manifest_json=msg.manifest_json, onnx=bytes(msg.onnx), signature=bytes(msg.signature),
    )


def diagnostic_status(name: str, hardware_id: str, level: bytes, message: str,
                      values: dict[str, object]) -> DiagnosticStatus:
    status = DiagnosticStatus()
    status.level = level  # DiagnosticStatus.OK/WARN/ERROR are single bytes
    status.name = name
    status.hardware_id = hardware_id
    status.message = message
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    return status
