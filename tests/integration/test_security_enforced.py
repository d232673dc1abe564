"""SROS2 turned on: nodes never run open, whatever the middleware can do.

Fact about this venv: the PyPI Fast DDS (ros-fastdds) is built without the DDS
Security plugins, so a participant asked to enforce security refuses to start
("This Fast DDS version doesn't have the security libraries"). These tests hold
either way: a secured node is invisible and unreachable for a participant
without the keystore, and it reports the enclave it was given. Whether the
plugins are present is probed, and the launcher's behaviour is checked for it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
import rclpy
from dreamer_msgs.msg import Transition
from stack_harness import CONFIG_DIR, NodeProcesses
from std_srvs.srv import Trigger

from dreamer_core.deploy import generate_keypair
from dreamer_ros import keystore, qos
from dreamer_ros.stack_launcher import stop_process

pytestmark = pytest.mark.ros

NS = "/r1"
MISSING_PLUGINS = "doesn't have the security libraries"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("sros2") / "keystore"
    keystore.create_keystore(root, keystore.graph_for("a1_sim", NS, ["sim"]))
    return root


def security_plugins_present(store, env) -> bool:
    """Whether this middleware can create a participant with SROS2 enforced."""
    probe = "import rclpy; rclpy.init(); rclpy.create_node('dreamer_stack_monitor'); print('SECURED')"
    env = {**env, **keystore.security_env(store), "ROS_SECURITY_ENCLAVE_OVERRIDE": keystore.monitor_enclave(NS)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert "SECURED" in out.stdout or MISSING_PLUGINS in out.stderr, out.stderr
    return "SECURED" in out.stdout


def reached_security(nodes: NodeProcesses, name: str) -> bool:
    """The node's participant was created with its enclave, or refused (the process then exits)."""
    return "Found security directory" in nodes.log(name) or nodes.procs[name].poll() is not None


def test_secured_nodes_are_unreachable_without_an_enclave(store, tmp_path, ros_env):
    nodes = NodeProcesses(tmp_path / "run", ros_env, robot="a1_sim", namespace=NS,
                          keys_dir=generate_keypair(tmp_path / "keys")[0].parent)
    specs = [nodes.specs["replay_node"], nodes.specs["control_node"]]
    env, warnings = keystore.use_keystore(store, specs, robot="a1_sim", stack="sim", namespace=NS)
    assert warnings == []
    nodes.env = {**ros_env, **env}
    # A participant with no keystore (this test process) on the same domain.
    rclpy.init()
    intruder = rclpy.create_node("intruder")
    try:
        for spec in specs:
            nodes.start(spec.name)
        transitions = intruder.create_publisher(Transition, f"{NS}/transitions", qos.TRANSITION)
        clear_estop = intruder.create_client(Trigger, f"{NS}/control_node/clear_estop")
        # Keep trying until 5 s after both nodes have set up (or refused) their secured participants.
        deadline = time.monotonic() + 120.0
        seq = 0
        while time.monotonic() < deadline:
            if all(reached_security(nodes, s.name) for s in specs):
                deadline = min(deadline, time.monotonic() + 5.0)
            transitions.publish(Transition(robot_id="a1_sim", session_id="forged", seq=seq,
                                           obs=[0.0] * 48, action=[0.0] * 12))
            seq += 1
            rclpy.spin_once(intruder, timeout_sec=0.1)
            assert transitions.get_subscription_count() == 0, "the replay node took transitions from an intruder"
            assert not clear_estop.service_is_ready(), "an intruder reached clear_estop"
            assert not {"replay_node", "control_node"} & set(intruder.get_node_names())
        for spec in specs:
            log = nodes.log(spec.name)
            # rcl found the enclave the launcher assigned, under the keystore from the environment.
            assert f"Found security directory: {store.resolve()}/enclaves{NS}/{spec.name}" in log, log
            if nodes.procs[spec.name].poll() is not None:  # refused to start: only for want of security
                assert nodes.procs[spec.name].returncode != 0 and MISSING_PLUGINS in log, log
    finally:
        nodes.stop_all()
        intruder.destroy_node()
        rclpy.try_shutdown()


def test_dreamer_stack_with_a_keystore_starts_secured_or_not_at_all(store, tmp_path, ros_env):
    plugins = security_plugins_present(store, ros_env)
    run = tmp_path / "run"
    cmd = ["dreamer-stack", "sim", "--namespace", NS, "--keystore", str(store), "--run-dir", str(run),
           "--minutes", "0.05", "--keys-dir", str(generate_keypair(tmp_path / "keys")[0].parent)]
    out = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=300)
    if plugins:
        assert out.returncode == 0, out.stderr
        assert "Found security directory" in (run / "logs" / "control_node.log").read_text()
    else:
        assert out.returncode == 2
        assert "cannot start with SROS2 enforced" in out.stderr and MISSING_PLUGINS in out.stderr
        assert not (run / "logs").exists(), "a node was started although security could not be enforced"


def test_dreamer_stack_refuses_a_keystore_without_the_enclaves_it_needs(tmp_path, ros_env):
    partial = tmp_path / "keystore"
    graph = keystore.graph_for("a1_sim", NS, ["offboard"])  # no sim_robot, no control_node
    keystore.create_keystore(partial, graph)
    keys = generate_keypair(tmp_path / "keys")[0].parent
    out = subprocess.run(["dreamer-stack", "sim", "--namespace", NS, "--keystore", str(partial),
                          "--run-dir", str(tmp_path / "run"), "--keys-dir", str(keys)], env=ros_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert f"enclave {NS}/sim_robot" in out.stderr and "missing cert.pem" in out.stderr
    assert not (tmp_path / "run" / "logs").exists()


def test_launch_file_gives_each_node_its_enclave(store, tmp_path, ros_env):
    pytest.importorskip("launch", reason="launch_ros is not installable from PyPI; run on a ROS 2 install")
    pytest.importorskip("launch_ros")
    keys = generate_keypair(tmp_path / "keys")[0].parent
    script = textwrap.dedent(f"""
        import launch, sys
        from launch.actions import IncludeLaunchDescription
        from launch.launch_description_sources import PythonLaunchDescriptionSource
        ls = launch.LaunchService()
        ls.include_launch_description(launch.LaunchDescription([IncludeLaunchDescription(
            PythonLaunchDescriptionSource("{CONFIG_DIR.parent}/launch/offboard.launch.py"),
            launch_arguments={{"keystore": "{store}", "namespace": "{NS}", "run_dir": "{tmp_path}",
                              "keys_dir": "{keys}"}}.items())]))
        sys.exit(ls.run())
    """)
    expected = {f"Found security directory: {store.resolve()}/enclaves{NS}/{node}"
                for node in ("replay_node", "learner_node")}
    proc = subprocess.Popen([sys.executable, "-c", script], env=ros_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(proc.stdout), daemon=True)  # whole lines, as they come
    reader.start()
    try:
        deadline = time.monotonic() + 240.0
        while time.monotonic() < deadline and not all(any(e in line for line in seen) for e in expected):
            time.sleep(0.5)
    finally:
        stop_process(proc, 30.0)
        reader.join(timeout=10.0)
    assert all(any(e in line for line in seen) for e in expected), "".join(seen[-60:])
