"""Translation between ROS messages and dreamer_core types. No logic beyond field mapping."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from dreamer_msgs.msg import PolicyBundle as PolicyBundleMsg
from dreamer_msgs.msg import Transition as TransitionMsg
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray

from dreamer_core.control.sensors import SensorReadings
from dreamer_core.deploy import PolicyBundle
from dreamer_core.storage import Transition


def readings_from_msgs(joints: JointState, imu: Imu, odom: Odometry | None, contacts: Float64MultiArray | None,
                       *, clock: float, received: float) -> SensorReadings:
    """Copy the sensor fields the controller reads; every check happens in the controller's tick."""
    q, w = imu.orientation, imu.angular_velocity
    stamps = {"joint_states": _seconds(joints.header.stamp), "imu": _seconds(imu.header.stamp)}
    lin = None
    if odom is not None:
        v = odom.twist.twist.linear
        lin = (v.x, v.y, v.z)
        stamps["odometry"] = _seconds(odom.header.stamp)
    return SensorReadings(
        joint_names=tuple(joints.name), joint_position=joints.position, joint_velocity=joints.velocity,
        joint_effort=joints.effort, orientation_xyzw=(q.x, q.y, q.z, q.w), angular_velocity=(w.x, w.y, w.z),
        linear_velocity=lin, foot_contacts=None if contacts is None else contacts.data,
        header_stamps=stamps, clock=clock, received=received,
    )


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


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


def diagnostic_status(node: str, robot_id: str, level: bytes, message: str,
                      values: dict[str, object]) -> DiagnosticStatus:
    """A node's status in the one scheme of every dreamer_ros node: named `<node>: <robot_id>`, with
    the robot as its hardware_id."""
    status = DiagnosticStatus()
    status.level = level  # DiagnosticStatus.OK/WARN/ERROR are single bytes
    status.name = f"{node}: {robot_id}"
    status.hardware_id = robot_id
    status.message = message
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    return status


def status_node(status: DiagnosticStatus) -> str:
    """The node a dreamer_ros status comes from (its name up to the colon)."""
    return status.name.split(":", 1)[0]
