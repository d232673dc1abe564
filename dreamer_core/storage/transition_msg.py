"""``dreamer_msgs/msg/Transition`` without ROS: its definition text and the field mapping.

The replay node (rclpy messages) and the bag import (rosbags messages) share
``transition_from_msg``: both message kinds have the same attribute layout. The
definition is kept here, not read from ros2_ws, so dreamer_core needs no ROS
workspace at run time; a unit test keeps it equal to ``dreamer_msgs/msg/Transition.msg``.
"""

from __future__ import annotations

import math

import numpy as np

from .records import Transition

TRANSITION_MSGTYPE = "dreamer_msgs/msg/Transition"

# Byte for byte the content of ros2_ws/src/dreamer_msgs/msg/Transition.msg.
TRANSITION_MSG = """\
# One control tick of a robot, streamed by control_node to replay_node.
# `action` is the action chosen after seeing `obs` (DreamerV3 convention).
std_msgs/Header header
string robot_id
string session_id
# Monotonic per session: used for de-duplication and gap detection.
uint64 seq
float32[] obs
float32[] action
float32 reward
# First step of an episode.
bool is_first
# Last step of an episode (time limit, reset or terminal).
bool is_last
# The episode ended in a terminal state (e.g. a fall): no bootstrapping past it.
bool is_terminal
uint32 policy_version
"""


def stamp_parts(seconds: float) -> tuple[int, int]:
    """(sec, nanosec) of a ``builtin_interfaces/Time`` for a stamp in seconds, or a ValueError
    when it does not fit (sec is int32).

    Wall-clock stamps (after April 1970) convert back with ``stamp_seconds`` to the identical
    float: there, the spacing of floats is wider than a nanosecond.
    """
    sec = math.floor(seconds)
    nanosec = round((seconds - sec) * 1e9)
    if nanosec == 1_000_000_000:
        sec, nanosec = sec + 1, 0
    if not 0 <= sec < 2**31:
        raise ValueError(f"stamp {seconds!r} s does not fit builtin_interfaces/Time (0 <= sec < 2**31)")
    return int(sec), int(nanosec)


def stamp_seconds(sec: int, nanosec: int) -> float:
    """A ``builtin_interfaces/Time`` as seconds (the inverse of ``stamp_parts``)."""
    return sec + nanosec * 1e-9


def transition_from_msg(msg) -> Transition:
    """A ``Transition`` from a ``dreamer_msgs/msg/Transition`` (rclpy or rosbags message);
    the header stamp is the transition's stamp."""
    return Transition(
        robot_id=msg.robot_id, session_id=msg.session_id, seq=int(msg.seq),
        obs=np.asarray(msg.obs, dtype=np.float32), action=np.asarray(msg.action, dtype=np.float32),
        reward=float(msg.reward), is_first=bool(msg.is_first), is_last=bool(msg.is_last),
        is_terminal=bool(msg.is_terminal), policy_version=int(msg.policy_version),
        stamp=stamp_seconds(msg.header.stamp.sec, msg.header.stamp.nanosec),
    )
