"""A Transition publisher for tests/integration/test_replay_node.py: a careless or hostile peer.

    python _transition_peer.py PLAN.json OBS_DIM ACT_DIM

PLAN.json is a list of groups, published in order once a subscriber is matched:
``{"robot_id", "session_id", "first_seq", "count", "reward"?, "obs"?, "action"?}``. A
``session_id`` containing ``{i}`` gets the group index of each message (one session per
message); otherwise seqs run from ``first_seq``. ``obs``/``action`` fill the vectors
(default 0.1 / 0.0). Prints ``published``, then waits for a line on stdin and floods
session "live" of the plan's first robot from the seq after its highest, 1 ms apart,
until killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import rclpy
from dreamer_msgs.msg import Transition

from dreamer_ros import qos


def message(robot_id: str, session_id: str, seq: int, obs_dim: int, act_dim: int, group: dict) -> Transition:
    msg = Transition(robot_id=robot_id, session_id=session_id, seq=seq)
    msg.obs = [float(group.get("obs", 0.1))] * obs_dim
    msg.action = [float(group.get("action", 0.0))] * act_dim
    msg.reward = float(group.get("reward", 0.5))
    msg.is_first = seq == 0
    return msg


def main() -> None:
    plan, obs_dim, act_dim = json.loads(Path(sys.argv[1]).read_text()), int(sys.argv[2]), int(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node("transition_peer")
    pub = node.create_publisher(Transition, "transitions", qos.TRANSITION)
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    if pub.get_subscription_count() == 0:
        print("no subscriber", flush=True)
        sys.exit(3)
    live = -1
    for group in plan:
        for i in range(group["count"]):
            session = group["session_id"].format(i=i)
            seq = group["first_seq"] + (0 if "{i}" in group["session_id"] else i)
            pub.publish(message(group["robot_id"], session, seq, obs_dim, act_dim, group))
            if session == "live" and seq < 2**62:
                live = max(live, seq)
    print("published", flush=True)
    sys.stdin.readline()
    seq = live + 1
    while True:
        pub.publish(message(plan[0]["robot_id"], "live", seq, obs_dim, act_dim, {}))
        seq += 1
        time.sleep(0.001)


if __name__ == "__main__":
    main()
