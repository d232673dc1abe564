"""A peer process for tests/integration/test_msgs_cross_process.py.

Modes:
  publish N_TRANSITIONS BUNDLE_BYTES HOLD_S  publish Transitions (once a subscriber is matched)
                                             and one PolicyBundle, then stay alive HOLD_S seconds
  subscribe_transitions N TIMEOUT_S          print a JSON summary of the received Transitions
  subscribe_bundle TIMEOUT_S                 print a JSON summary of the received PolicyBundle
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

import rclpy
from dreamer_msgs.msg import PolicyBundle, Transition

from dreamer_ros import qos


def spin_until(node, predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


def publish(n_transitions: int, bundle_bytes: int, hold_s: float) -> None:
    node = rclpy.create_node("msg_peer_publisher")
    tpub = node.create_publisher(Transition, "transitions", qos.TRANSITION)
    bpub = node.create_publisher(PolicyBundle, "policy_bundle", qos.POLICY_BUNDLE)
    if not spin_until(node, lambda: tpub.get_subscription_count() > 0, 20.0):
        print("no transition subscriber", flush=True)
        sys.exit(3)
    for seq in range(n_transitions):
        msg = Transition(robot_id="a1", session_id="s1", seq=seq, obs=[float(seq)] * 48, action=[0.5] * 12)
        msg.reward = float(seq) * 0.5
        msg.is_first = seq == 0
        msg.policy_version = 7
        tpub.publish(msg)
    payload = bytes(range(256)) * (bundle_bytes // 256)
    bundle = PolicyBundle(version=3, robot_id="a1", spec_hash="abc", manifest_json="{}")
    bundle.onnx = payload
    bundle.sha256 = hashlib.sha256(payload).hexdigest()
    bundle.signature = b"\x01\x02"
    bpub.publish(bundle)
    print("published", flush=True)
    spin_until(node, lambda: False, hold_s)
    node.destroy_node()


def subscribe_transitions(n: int, timeout_s: float) -> None:
    node = rclpy.create_node("msg_peer_transitions")
    got: list[Transition] = []
    node.create_subscription(Transition, "transitions", got.append, qos.TRANSITION)
    print("ready", flush=True)
    spin_until(node, lambda: len(got) >= n, timeout_s)
    summary = {
        "count": len(got),
        "seqs": [m.seq for m in got],
        "obs_len": len(got[0].obs) if got else 0,
        "first_reward_sum": sum(m.reward for m in got),
        "is_first": [m.is_first for m in got[:2]],
        "policy_version": got[-1].policy_version if got else None,
    }
    print(json.dumps(summary), flush=True)
    node.destroy_node()


def subscribe_bundle(timeout_s: float) -> None:
    node = rclpy.create_node("msg_peer_bundle")
    got: list[PolicyBundle] = []
    node.create_subscription(PolicyBundle, "policy_bundle", got.append, qos.POLICY_BUNDLE)
    spin_until(node, lambda: bool(got), timeout_s)
    if got:
        b = got[0]
        data = bytes(b.onnx)
        sha_ok = hashlib.sha256(data).hexdigest() == b.sha256
        summary = {"version": b.version, "size": len(data), "sha_ok": sha_ok}
    else:
        summary = {"version": None}
    print(json.dumps(summary), flush=True)
    node.destroy_node()


def main() -> None:
    rclpy.init()
    try:
        mode, args = sys.argv[1], sys.argv[2:]
        if mode == "publish":
            publish(int(args[0]), int(args[1]), float(args[2]))
        elif mode == "subscribe_transitions":
            subscribe_transitions(int(args[0]), float(args[1]))
        elif mode == "subscribe_bundle":
            subscribe_bundle(float(args[0]))
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
