"""ROS-native parameters over DDS: one sim stack started by `dreamer-stack --params-file`, shared by
the module's tests, driven through the nodes' parameter services as `ros2 param` drives them.

Read-only parameters are refused with a reason and keep their value; live ones in range are
accepted and change what the node does (diagnostics, commands, stored data, training); out-of-range
values are refused; every parameter is described; the params file reached every node.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from rclpy.parameter import Parameter
from stack_harness import Monitor, RemoteParameters

from dreamer_core.deploy import generate_keypair
from dreamer_ros.params import load_installed_robot_config
from dreamer_ros.stacks import STACKS

pytestmark = pytest.mark.ros

NODES = STACKS["sim"]
# Declared by rclpy itself in every node, not by dreamer_ros.
RCLPY_OWN = {"use_sim_time", "start_type_description_service"}
PARAMS_FILE = """\
/**:
  ros__parameters:
    seed: 7
control_node:
  ros__parameters:
    initial_policy_amplitude: 0.2
learner_node:
  ros__parameters:
    min_steps: 1000000   # no training (and no CPU load) until a test lowers it
replay_node:
  ros__parameters:
    capacity_steps: 123456
"""


@dataclass
class RunningStack:
    monitor: Monitor
    params: dict[str, RemoteParameters]
    log: Path

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        self.monitor.wait_for(predicate, timeout, f"{what} (runner output in {self.log})")

    def diag(self, node: str, key: str, default=None):
        return self.monitor.value(node, key, default)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, module_ros_env):
    root = tmp_path_factory.mktemp("parameters")
    keys = generate_keypair(root / "keys")[0].parent
    (root / "my_params.yaml").write_text(PARAMS_FILE)
    log = root / "runner.log"
    with open(log, "wb") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "dreamer_ros.stack_launcher", "sim", "--run-dir", str(root / "run"),
             "--keys-dir", str(keys), "--params-file", str(root / "my_params.yaml")],
            env=module_ros_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    monitor = Monitor(load_installed_robot_config("a1_sim"))
    try:
        running = RunningStack(monitor, {}, log)
        # The learner reports last: it imports torch. The control node's first diagnostics come after configure.
        running.wait_for(lambda: all(monitor.value(n, "device" if n == "learner_node" else "ticks" if n == "sim_robot"
                                                   else "steps" if n == "replay_node" else "explore") is not None
                                     for n in NODES), 300, "every node's diagnostics")
        running.params = {name: RemoteParameters(monitor.node, f"/{name}") for name in NODES}
        yield running
    finally:
        runner.send_signal(signal.SIGINT)  # the runner stops the nodes (Ctrl-C)
        try:
            runner.wait(timeout=180)
        finally:
            if runner.poll() is None:
                os.killpg(runner.pid, signal.SIGKILL)
                runner.wait()
            monitor.close()


def test_declare_parameters_checks_applies_or_refuses_each_set(ros_env):
    """The helper on an in-process rclpy node (sets go through the same rclpy path as the service)."""
    import rclpy

    from dreamer_ros.params import Param, declare_parameters

    applied = []

    def apply(changes):
        if changes.get("rate") == 3:
            raise ValueError("parameter rate: 3 would starve the loop")
        applied.append(changes)

    table = {"rate": Param(1, "a live int", range=(1, 10), live=True),
             "mode": Param("a", "a live choice", choices=("a", "b"), live=True),
             "path": Param("", "a read-only path")}
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("helper_test", context=context)
        assert declare_parameters(node, table, apply) == {"rate": 1, "mode": "a", "path": ""}

        def set_(name, value):
            result = node.set_parameters([Parameter(name, value=value)])[0]
            return result.successful, result.reason

        assert set_("rate", 5) == (True, "") and applied == [{"rate": 5}]
        assert set_("rate", 3) == (False, "parameter rate: 3 would starve the loop")
        assert set_("rate", 11)[0] is False and set_("mode", "c") == (
            False, "parameter mode: 'c' is not allowed; use one of a, b")
        assert set_("path", "/x") == (False, "Trying to set a read-only parameter: path.")
        assert node.get_parameter("rate").value == 5 and applied == [{"rate": 5}]
        with pytest.raises(ValueError, match="live parameters"):
            declare_parameters(node, {"other": Param(0.5, "live", range=(0.0, 1.0), live=True)})
        given = rclpy.create_node("helper_test_given", context=context,
                                  parameter_overrides=[Parameter("rate", value=50)])
        with pytest.raises(ValueError, match=r"parameter rate: .*out of range.*; allowed \[1, 10\]"):
            declare_parameters(given, table, apply)
    finally:
        rclpy.try_shutdown(context=context)


def test_the_params_file_given_to_dreamer_stack_reaches_every_node(stack):
    assert stack.params["control_node"].get("initial_policy_amplitude", "seed") == {
        "initial_policy_amplitude": 0.2, "seed": 7}
    assert stack.params["learner_node"].get("min_steps", "seed") == {"min_steps": 1000000, "seed": 7}
    assert stack.params["replay_node"].get("capacity_steps") == {"capacity_steps": 123456}
    assert stack.params["sim_robot"].get("seed") == {"seed": 7}
    # The stack's own settings still come from its arguments.
    assert stack.params["control_node"].get("robot_config")["robot_config"] == "a1_sim"


def test_every_parameter_of_every_node_is_described_and_every_number_has_a_range(stack):
    from rcl_interfaces.msg import ParameterType

    for node in NODES:
        names = [n for n in stack.params[node].names() if n not in RCLPY_OWN]
        assert "robot_config" in names and len(names) >= 4, (node, names)
        for name, descriptor in stack.params[node].describe(*names).items():
            assert descriptor.description.strip(), f"{node}.{name} has no description"
            if descriptor.type == ParameterType.PARAMETER_INTEGER:
                assert descriptor.integer_range, f"{node}.{name} has no range"
            if descriptor.type == ParameterType.PARAMETER_DOUBLE:
                assert descriptor.floating_point_range, f"{node}.{name} has no range"


@pytest.mark.parametrize("node, name, value", [
    ("control_node", "allow_unsigned", True),
    ("control_node", "public_key", "/tmp/other.pub"),
    ("replay_node", "chunk_length", 16),
    ("learner_node", "device", "cpu"),
    ("sim_robot", "real_time_factor", 2.0),
])
def test_a_read_only_parameter_is_refused_with_a_reason_and_keeps_its_value(stack, node, name, value):
    before = stack.params[node].get(name)
    assert stack.params[node].describe(name)[name].read_only
    ok, reason = stack.params[node].set(name, value)
    assert not ok and name in reason and "read-only" in reason
    assert stack.params[node].get(name) == before


@pytest.mark.parametrize("node, name, value, allowed", [
    ("control_node", "initial_policy_amplitude", 1.5, "Max: 1.0"),
    ("control_node", "stall_timeout_s", float("nan"), "Min: 0.01"),
    ("replay_node", "max_abs_obs", -1.0, "Min: 0.0"),
    ("learner_node", "export_every_updates", 0, "Min: 1"),
])
def test_an_out_of_range_value_is_refused_naming_the_parameter_and_the_range(stack, node, name, value, allowed):
    before = stack.params[node].get(name)
    ok, reason = stack.params[node].set(name, value)
    assert not ok and name in reason and allowed in reason, reason
    assert stack.params[node].get(name) == before


def test_a_wrong_type_is_refused(stack):
    ok, reason = stack.params["control_node"].set("explore", "no")
    assert not ok and "type" in reason
    assert stack.params["control_node"].get("explore") == {"explore": True}


def test_use_sim_time_is_refused_by_every_node_and_the_robot_keeps_its_commands(stack):
    """Accepted, it would stop the control node's clock (nothing publishes /clock): held robot, no diagnostics."""
    for node in NODES:
        ok, reason = stack.params[node].set("use_sim_time", True)
        assert not ok and "use_sim_time is not supported" in reason, f"{node}: {reason}"
        assert stack.params[node].get("use_sim_time") == {"use_sim_time": False}
    published, t0 = int(stack.diag("control_node", "transitions_published")), time.monotonic()
    stack.wait_for(lambda: len(stack.monitor.commands_since(t0)) >= 10
                   and int(stack.diag("control_node", "transitions_published")) > published,
                   60, "commands and fresh control_node diagnostics after the refused sets")


def test_explore_set_live_changes_what_the_control_loop_does(stack):
    control = stack.params["control_node"]
    assert control.set("explore", False) == (True, "")
    stack.wait_for(lambda: stack.diag("control_node", "explore") == "False", 30, "explore off on diagnostics")
    # ~/set_exploration goes through the parameter too: both always agree.
    from std_srvs.srv import SetBool

    client = stack.monitor.node.create_client(SetBool, "/control_node/set_exploration")
    assert client.wait_for_service(timeout_sec=30)
    future = client.call_async(SetBool.Request(data=True))
    deadline = time.monotonic() + 30
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert future.done() and future.result().success
    assert control.get("explore") == {"explore": True}
    stack.wait_for(lambda: stack.diag("control_node", "explore") == "True", 30, "explore on on diagnostics")


def test_initial_policy_amplitude_set_live_changes_the_commands(stack):
    standing = [j.default for j in stack.monitor.config.joints]

    def standing_still(n: int) -> bool:
        """The last `n` commands are the default standing pose."""
        recent = stack.monitor.commands_since(0.0)[-n:]
        return len(recent) == n and all(max(abs(a - b) for a, b in zip(c, standing, strict=True)) < 1e-6
                                        for c in recent)

    # No bundle yet: the random initial policy acts around the standing pose, never on it.
    assert not standing_still(25)
    assert stack.params["control_node"].set("initial_policy_amplitude", 0.0) == (True, "")
    try:
        # Amplitude 0: the smoothed action decays to 0, the command to the standing pose.
        stack.wait_for(lambda: standing_still(25), 120, "commands to stand still at amplitude 0")
    finally:
        stack.params["control_node"].set("initial_policy_amplitude", 0.2)


def test_an_admission_limit_set_live_applies_to_the_next_transitions(stack):
    replay = stack.params["replay_node"]
    stack.wait_for(lambda: int(stack.diag("replay_node", "admitted", 0)) > 0, 120, "transitions being stored")
    assert replay.set("max_abs_obs", 1e-3) == (True, "")
    try:
        stack.wait_for(lambda: int(stack.diag("replay_node", "refused_bad_obs", 0)) > 0, 60,
                       "transitions refused under the lowered max_abs_obs")
    finally:
        assert replay.set("max_abs_obs", 1e4) == (True, "")
    admitted = int(stack.diag("replay_node", "admitted"))
    stack.wait_for(lambda: int(stack.diag("replay_node", "admitted")) > admitted, 60, "transitions stored again")
    ok, reason = replay.set("allowed_robot_ids", [], Parameter.Type.STRING_ARRAY)
    assert not ok and "robot_ids" in reason  # AdmissionLimits refuses an empty list


def test_min_steps_set_live_starts_training(stack):
    learner = stack.params["learner_node"]
    assert stack.diag("learner_node", "updates") in (None, "0")
    stack.wait_for(lambda: int(stack.diag("replay_node", "steps", 0)) >= 500, 180, "500 stored steps")
    assert learner.set("min_steps", 500) == (True, "")
    assert learner.set("export_every_updates", 1000) == (True, "")
    stack.wait_for(lambda: int(stack.diag("learner_node", "updates", 0)) > 0, 300, "the learner's first updates")
    assert learner.get("min_steps", "export_every_updates") == {"min_steps": 500, "export_every_updates": 1000}
