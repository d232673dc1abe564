"""replay_node as its own process over DDS: hostile publishers cannot poison the store, and
SIGINT during a flood stops it cleanly with what arrived stored.

Reproduces two faults of the node: one forged Transition with seq 2**63-2 made every later real
transition of the session a duplicate, any robot_id was stored, each new session id got a
folder and a reward of 3e38 was stored; and SIGINT while transitions arrived raised
"replay store ... is closed" from a late callback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ament_index_python.packages import get_package_share_directory
from stack_harness import MIN_WAIT_S

from dreamer_core.robots.config import load_robot_config
from dreamer_core.storage import ReplayStore
from dreamer_ros.stack_launcher import DiagnosticsWatcher, node_command, stop_process
from dreamer_ros.stacks import NodeSpec

pytestmark = pytest.mark.ros

PEER = Path(__file__).with_name("_transition_peer.py")
CONFIG_DIR = Path(get_package_share_directory("dreamer_ros")) / "config"


def wait_for(predicate, timeout: float, what: str, watcher: DiagnosticsWatcher) -> None:
    deadline = time.monotonic() + max(timeout, MIN_WAIT_S)
    while time.monotonic() < deadline:
        with watcher.lock:
            if predicate(watcher.latest.get("replay_node", {})):
                return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; replay_node diagnostics: {watcher.latest.get('replay_node')}")


def test_replay_node_refuses_hostile_transitions_and_stops_cleanly(tmp_path, ros_env):
    config = load_robot_config("a1_sim")
    robot = config.robot_id
    plan = [
        {"robot_id": robot, "session_id": "live", "first_seq": 0, "count": 100},
        {"robot_id": robot, "session_id": "live", "first_seq": 2**63 - 2, "count": 1},  # forged far-future seq
        {"robot_id": robot, "session_id": "live", "first_seq": 100, "count": 500},
        {"robot_id": "intruder", "session_id": "live", "first_seq": 600, "count": 10},
        {"robot_id": robot, "session_id": "forged-{i}", "first_seq": 0, "count": 300},
        {"robot_id": robot, "session_id": "live", "first_seq": 600, "count": 1, "reward": 3e38},
        {"robot_id": robot, "session_id": "live", "first_seq": 600, "count": 1, "obs": float("nan")},
        {"robot_id": robot, "session_id": "live", "first_seq": 600, "count": 1, "obs": 1e6},
        {"robot_id": robot, "session_id": "live", "first_seq": 600, "count": 1, "action": 5.0},
        {"robot_id": robot, "session_id": "live", "first_seq": 600, "count": 50},
    ]
    published = sum(group["count"] for group in plan)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    replay_dir = tmp_path / "replay"
    spec = NodeSpec("replay_node", "replay_node", parameters=[
        str(CONFIG_DIR / "replay_node.yaml"),
        # Two new sessions at most: the live one and one forged.
        {"robot_config": "a1_sim", "replay_dir": str(replay_dir), "new_session_burst": 2,
         "new_sessions_per_hour": 0.0},
    ])
    (tmp_path / "params").mkdir()
    log_path = tmp_path / "replay_node.log"
    watcher = DiagnosticsWatcher(node_name="replay_test_monitor")
    node = peer = None
    try:
        with open(log_path, "wb") as log:
            node = subprocess.Popen(node_command(spec, tmp_path / "params"), env=ros_env, stdout=log,
                                    stderr=subprocess.STDOUT)
        wait_for(lambda d: "received" in d, 60, "replay_node diagnostics", watcher)
        peer = subprocess.Popen(
            [sys.executable, str(PEER), str(tmp_path / "plan.json"), str(config.obs_dim), str(config.act_dim)],
            env=ros_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert peer.stdout.readline().strip() == "published"
        wait_for(lambda d: int(d.get("received", 0)) >= published, 60, "every transition received", watcher)
        with watcher.lock:
            values = dict(watcher.latest["replay_node"])
        expected = {
            "refused_seq_ahead": 1, "refused_unknown_robot": 10, "refused_session_rate": 299,
            "refused_bad_reward": 1, "refused_bad_obs": 2, "refused_bad_action": 1,
            "refused_bad_flags": 0, "refused": 314, "admitted": 651, "received": published,
        }
        assert {key: int(values[key]) for key in expected} == expected, values
        counters = [key for key in values if key.startswith("refused") or key in ("admitted", "received", "steps")]
        assert all(values[key].isdigit() for key in counters), "counters are published as integers"

        # SIGINT while transitions keep arriving.
        peer.stdin.write("flood\n")
        peer.stdin.flush()
        wait_for(lambda d: int(d.get("received", 0)) >= published + 200, 60, "the flood", watcher)
        assert stop_process(node, grace_s=30.0), "replay_node did not stop on SIGINT"
    finally:
        if peer is not None:
            peer.kill()
            peer.wait()
        if node is not None and node.poll() is None:
            node.kill()
            node.wait()
        watcher.close()
    log = log_path.read_text(errors="replace")
    assert node.returncode == 0, log[-3000:]
    assert "Traceback" not in log and "is closed" not in log, log[-3000:]
    stopped = re.search(r"stopped taking transitions: received (\d+), admitted (\d+)", log)
    assert stopped, log[-3000:]
    admitted = int(stopped.group(2))

    with ReplayStore(replay_dir, readonly=True) as store:
        sessions = {(s.robot_id, s.session_id): s for s in store.sessions()}
        seqs = np.concatenate([cols["seq"] for _, cols in store.iter_steps(session_id="live")])
        rewards = np.concatenate([cols["reward"] for _, cols in store.iter_steps()])
        assert store.num_steps == admitted, "everything admitted before the stop was stored"
        assert store.spec == config.policy_spec()
    assert set(sessions) == {(robot, "live"), (robot, "forged-0")}
    assert len(list((replay_dir / "sessions").iterdir())) == 2
    np.testing.assert_array_equal(seqs[:650], np.arange(650))  # nothing of the live session black-holed
    assert np.all(np.diff(seqs.astype(np.int64)) > 0) and len(seqs) > 650
    assert float(np.abs(rewards).max()) <= 1e4
