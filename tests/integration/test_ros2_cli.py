"""A ROS user's tools on the demo stack: `ros2 launch dreamer_ros sim.launch.py`, then `ros2 node`,
`ros2 param`, `ros2 topic echo`, `ros2 lifecycle` and `ros2 interface` against it, as a terminal would.

The `ros2` command has no PyPI wheels: `make setup` installs it into .venv from ../shared/ros2-cli
(with the launch wheels of ../shared/ros2-launch) when those folders exist, and any ROS 2 install has
it. Where it is missing these tests skip with that reason; CI has ../shared beside the checkout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest
from stack_harness import ctrl_c, launched

from dreamer_core.deploy import generate_keypair, key_fingerprint, load_public_key

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROS2 = shutil.which("ros2")
if ROS2 is None:
    pytest.skip("the `ros2` command is not installed: `make setup` installs it from ../shared/ros2-cli "
                "(a ROS 2 install brings its own)", allow_module_level=True)

# Discovery on a loaded 2-core machine: a verb's first look at the graph may miss a node that is up.
CLI_TIMEOUT_S = 60.0
WAIT = "30"  # `ros2 param --timeout`: seconds a verb waits for the node to be discovered


def ros2(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ROS2, *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)


def until(env: dict[str, str], args: tuple[str, ...], done, timeout_s: float = 180.0) -> str:
    """Run `ros2 *args` until ``done(stdout)`` holds (at most ``timeout_s``); its stdout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = ros2(env, *args)
        if done(result.stdout):
            return result.stdout
        assert time.monotonic() < deadline, f"ros2 {' '.join(args)}: rc {result.returncode}\n" \
                                            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        time.sleep(2.0)


def test_a_ros_users_tools_on_the_launched_demo_stack(ros_env, tmp_path):
    keys, public = generate_keypair(tmp_path / "keys")
    env = {**ros_env, "ROS_LOG_DIR": str(tmp_path / "ros_log")}
    log = tmp_path / "launch.log"
    command = [ROS2, "launch", "dreamer_ros", "sim.launch.py", f"run_dir:={tmp_path / 'run'}",
               f"keys_dir:={keys.parent}"]
    with launched(command, env, log) as proc:
        until(env, ("lifecycle", "get", "--no-daemon", "/control_node"), lambda out: out.strip() == "active [3]",
              timeout_s=300)  # the learner imports torch: the stack takes a while on a loaded machine

        nodes = {"/sim_robot", "/control_node", "/replay_node", "/learner_node"}
        until(env, ("node", "list", "--no-daemon"), lambda out: nodes <= set(out.split()))

        get = ("param", "get", "--no-daemon", "--timeout", WAIT, "/control_node")
        put = ("param", "set", "--no-daemon", "--timeout", WAIT, "/control_node")
        assert ros2(env, *get, "initial_policy_amplitude").stdout.strip() == "Double value is: 0.3"
        done = ros2(env, *put, "initial_policy_amplitude", "0.5")
        assert done.stdout.strip() == "Set parameter successful", done.stdout + done.stderr
        refused = ros2(env, *put, "initial_policy_amplitude", "7.0")  # the verb says so on stderr (rc 0)
        assert refused.stderr.startswith("Setting parameter failed: Parameter initial_policy_amplitude out of range"), \
            refused
        assert ros2(env, *get, "initial_policy_amplitude").stdout.strip() == "Double value is: 0.5"
        sim_time = ros2(env, *put, "use_sim_time", "true")
        assert sim_time.stderr.startswith("Setting parameter failed: use_sim_time is not supported"), sim_time

        # Every node's status in one scheme, `<node>: <robot_id>` (each node publishes its own array).
        for node in sorted(nodes):
            name = f"{node.strip('/')}: a1_sim"
            echoed = ros2(env, "topic", "echo", "--once", "--no-daemon", "--timeout", "60", "--filter",
                          f"m.status[0].name == {name!r}", "/diagnostics", "diagnostic_msgs/msg/DiagnosticArray")
            assert f"name: '{name}'" in echoed.stdout and "hardware_id: a1_sim" in echoed.stdout, echoed

        shown = ros2(env, "interface", "show", "dreamer_msgs/msg/Transition")
        assert shown.returncode == 0 and re.search(r"^float32\[\] obs$", shown.stdout, re.MULTILINE), shown.stdout
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        text = ctrl_c(proc, log)
    # Each side names the key it uses: one pair, the same fingerprint.
    fingerprint = key_fingerprint(load_public_key(public))
    assert f"signing with key {fingerprint}" in text and f"accepting bundles signed by key {fingerprint}" in text
