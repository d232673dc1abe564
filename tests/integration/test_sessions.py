"""`dreamer-stack sim --sessions`: two short robot sessions with a break between them, as separate
processes over real DDS. The robot's nodes stop at the end of each session (its transitions are
stored) and start again with a new session id; replay node and learner run throughout, the learner
with offline training on; the end lists the return of each session, as the report does. And the
best candidate is waiting when the next session starts: a control node that starts after the
learner promoted versions receives the newest one, and only that one, from the bundle topic.

Correctness only: how much the learner trains in the break depends on the machine's load and is
printed, never asserted (the offline budget is tested in tests/unit/test_offline_training.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import rclpy
import yaml
from dreamer_msgs.msg import PolicyBundle as PolicyBundleMsg
from stack_harness import SLOW_SIM_STALE_PERIODS, Monitor, NodeProcesses
from test_canary_rollback import constant_policy

from dreamer_core.deploy import build_bundle, generate_keypair, load_private_key
from dreamer_core.report.run_data import load_run
from dreamer_core.report.session_returns import return_per_session
from dreamer_core.robots.config import load_robot_config, resolve_config_path
from dreamer_ros import qos
from dreamer_ros.conversions import bundle_to_msg

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(900)]


def test_two_sessions_with_a_break_store_two_sessions_and_report_each(tmp_path, ros_env):
    config = yaml.safe_load(resolve_config_path("a1_sim").read_text())
    config["episode"] = {"max_seconds": 2.0}  # several complete episodes in a short session
    config["safety"]["stale_sensor_periods"] = SLOW_SIM_STALE_PERIODS
    robot = tmp_path / "a1_sessions.yaml"
    robot.write_text(yaml.safe_dump(config))
    # The xs preset with train ratio 1: the learner meets the ratio within a session, so the break is
    # offline training (with the packaged 512 a CPU learner is still owed updates after the session).
    preset = tmp_path / "xs_ratio1.yaml"
    preset.write_text("deter: 64\nunits: 64\nlayers: 1\nstoch: 8\nclasses: 8\ntrain_ratio: 1\n")
    params = tmp_path / "sessions_params.yaml"
    params.write_text("learner_node:\n  ros__parameters:\n    min_steps: 200\n    export_every_updates: 5\n"
                      "    offline_idle_s: 2.0\n")
    keys = generate_keypair(tmp_path / "keys")[0].parent
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "dreamer_ros.stack_launcher", "sim", "--robot", str(robot), "--preset", str(preset),
         "--sessions", "2", "--session-minutes", "0.5", "--between-minutes", "0.25", "--run-dir", str(run),
         "--keys-dir", str(keys), "--params-file", str(params)],
        env=ros_env, capture_output=True, text=True, timeout=840)
    out = result.stdout
    logs = {path.stem: path.read_text(errors="replace") for path in (run / "logs").glob("*.log")}
    assert result.returncode == 0, (out, result.stderr, {k: v[-3000:] for k, v in logs.items()})

    # Progress says which session or break it is in, in this order.
    phases = re.findall(r"^\[dreamer-stack\] (session \d/2|break \d/1) \|", out, re.M)
    assert list(dict.fromkeys(phases)) == ["session 1/2", "break 1/1", "session 2/2"], out
    # The robot's nodes started twice, the replay node and the learner once.
    assert [len(re.findall(rf"started {name} ", out)) for name in ("sim_robot", "control_node", "replay_node",
                                                                    "learner_node")] == [2, 2, 1, 1], out
    assert "Traceback" not in out + result.stderr and not [n for n, t in logs.items() if "Traceback" in t]
    learner_params = yaml.safe_load((run / "params" / "learner_node.2.yaml").read_text())
    assert learner_params["/**"]["ros__parameters"]["offline_training"] is True

    # Each session stopped cleanly with its transitions stored, under its own session id.
    published = re.findall(r"published (\d+) transitions in session (\S+)", logs["control_node"])
    assert len(published) == 2 and published[0][1] != published[1][1], logs["control_node"][-3000:]
    sessions = return_per_session(load_run(run))
    stored = {s.session_id: s.steps for s in sessions}
    assert stored == {session: int(count) for count, session in published if int(count) > 0}

    # The end lists each session's return and versions (before the report's path, which comes last).
    lines = out.rstrip().splitlines()
    assert lines[-1] == f"[dreamer-stack] session report: {run / 'report.html'}"
    assert [line for line in lines if line.startswith("[dreamer-stack] session ") and " versions " in line] == [
        f"[dreamer-stack] {s.line()}" for s in sessions]
    page = (run / "report.html").read_text()
    table = page[page.index('<h2 id="sessions">'):page.index('<h2 id="returns">')]
    assert table.count("<tr>") == 1 + len(sessions) and all(s.session_id in table for s in sessions)

    state = json.loads((run / "learner" / "learner_state.json").read_text())
    print(f"sessions: {[s.line() for s in sessions]}; learner: {state['updates']} updates, "
          f"{state['offline_updates']} offline")


def test_a_control_node_that_starts_later_receives_the_newest_promoted_bundle(tmp_path, ros_env):
    """As between two sessions: the learner's one bundle publisher (reliable, transient local, depth 1)
    promoted v1 and then v2 while no control node ran; the next one to start gets v2, never v1."""
    model = load_robot_config("a1_sim")
    keys = generate_keypair(tmp_path / "keys")[0].parent
    key = load_private_key(keys / "policy_signing.key")
    stack = NodeProcesses(tmp_path / "run", ros_env, robot="a1_sim", keys_dir=keys)
    rclpy.init()
    monitor = Monitor(model)
    try:
        learner = monitor.node.create_publisher(PolicyBundleMsg, model.topics.policy_bundles, qos.POLICY_BUNDLE)
        for version in (1, 2):
            bundle = build_bundle(constant_policy(model, np.zeros(model.act_dim), seed=version), model.policy_spec(),
                                  version, 10 * version, "xs", key)
            learner.publish(bundle_to_msg(bundle))
        stack.start("control_node")  # no robot driver needed: bundles are validated without sensor data
        monitor.wait_for(lambda: monitor.value("control_node", "highest_accepted_version") == "2", 120,
                         "the late control node validating v2")
        log = stack.log("control_node")
        assert "policy v2 validated" in log and "v1" not in log, log[-3000:]
    finally:
        stack.stop_all()
        monitor.close()
        rclpy.try_shutdown()
