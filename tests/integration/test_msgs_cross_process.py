"""dreamer_msgs over real DDS between separate processes, with the QoS of dreamer_ros.qos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

PEER = str(Path(__file__).with_name("_msg_peer.py"))
BUNDLE_BYTES = 5 * 1024 * 1024
N_TRANSITIONS = 200


def last_json_line(output: str) -> dict:
    lines = [ln for ln in output.splitlines() if ln.startswith("{")]
    assert lines, f"peer printed no summary:\n{output}"
    return json.loads(lines[-1])


def test_transition_and_late_joining_bundle_subscriber(ros_env):
    sub_t = subprocess.Popen(
        [sys.executable, PEER, "subscribe_transitions", str(N_TRANSITIONS), "40"],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert sub_t.stdout.readline().strip() == "ready"
    pub = subprocess.Popen(
        [sys.executable, PEER, "publish", str(N_TRANSITIONS), str(BUNDLE_BYTES), "30"],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = pub.stdout.readline().strip()
        assert line == "published", f"publisher said {line!r}"
        # Started only now: the bundle was published before this process existed.
        late = subprocess.run(
            [sys.executable, PEER, "subscribe_bundle", "30"],
            env=ros_env, capture_output=True, text=True, timeout=90,
        )
        bundle = last_json_line(late.stdout + late.stderr)
        out_t, _ = sub_t.communicate(timeout=60)
        transitions = last_json_line(out_t)
    finally:
        pub.kill()
        sub_t.kill()
        pub.wait()
    assert transitions["count"] == N_TRANSITIONS
    assert transitions["seqs"] == list(range(N_TRANSITIONS))
    assert transitions["obs_len"] == 48
    assert transitions["is_first"] == [True, False]
    assert transitions["policy_version"] == 7
    assert transitions["first_reward_sum"] == pytest.approx(0.5 * sum(range(N_TRANSITIONS)))
    assert bundle == {"version": 3, "size": BUNDLE_BYTES, "sha_ok": True}
