"""Start dreamer_ros nodes as separate processes and watch them over DDS (for integration tests)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from dreamer_msgs.msg import PolicyBundle as PolicyBundleMsg
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool

from dreamer_ros import qos
from dreamer_ros.stack_launcher import DiagnosticsWatcher, node_command, stop_process
from dreamer_ros.stacks import STACKS, NodeSpec, stack_nodes

CONFIG_DIR = Path(get_package_share_directory("dreamer_ros")) / "config"
# On a loaded CI machine the sim falls behind real time and its readings arrive late: with the
# robot's 3-period default most episodes would end as stale_sensor faults, which a canary does not
# count, and no version would ever be judged. A stopped sensor still trips the watchdog within 0.3 s.
SLOW_SIM_STALE_PERIODS = 15
# Waits are upper bounds, not timing targets: each ends as soon as its condition holds. On a CI
# machine loaded several times over, starting a node (rclpy, onnxruntime and torch imports, DDS
# discovery) can take minutes: a control-node restart needed more than 60 s at load average 21.
# No wait gives up sooner than this.
MIN_WAIT_S = 180.0


@contextmanager
def launched(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A launch of the sim stack in its own process group, as a terminal starts it, output in `log`;
    killed with its nodes if it still runs when the block ends."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def ctrl_c(proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> str:
    """Ctrl-C (SIGINT to launch and every node at once); the launch log, once launch exited with 0
    and said that every node of the sim stack finished cleanly."""
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=timeout)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    for node in STACKS["sim"]:
        assert re.search(rf"\[{node}-\d+\]: process has finished cleanly", text), f"{node}: {text[-3000:]}"
    return text


class NodeProcesses:
    """Each node of a stack in its own process, with its output in logs/<name>.log."""

    def __init__(self, run_dir: Path, env: dict[str, str], **stack_kwargs):
        self.run_dir = run_dir
        self.env = env
        self.specs = {s.name: s for s in stack_nodes("sim", config_dir=CONFIG_DIR, run_dir=run_dir, **stack_kwargs)}
        self.procs: dict[str, subprocess.Popen] = {}
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        (run_dir / "params").mkdir(parents=True, exist_ok=True)

    def override(self, name: str, **params) -> None:
        spec: NodeSpec = self.specs[name]
        spec.parameters.append(params)

    def log(self, name: str) -> str:
        return (self.run_dir / "logs" / f"{name}.log").read_text(errors="replace")

    def log_tails(self, lines: int = 40) -> str:
        """The end of every node's log, for a failing test's output."""
        return "\n".join(f"--- {name}.log (last {lines} lines)\n" + "\n".join(self.log(name).splitlines()[-lines:])
                         for name in self.procs)

    def start(self, name: str) -> None:
        log = open(self.run_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        cmd = node_command(self.specs[name], self.run_dir / "params")
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill9(self, name: str) -> None:
        self.procs[name].kill()
        self.procs[name].wait()

    def stop(self, name: str, timeout: float = 30.0) -> int:
        stop_process(self.procs[name], timeout)
        return self.procs[name].returncode

    def stop_all(self) -> None:
        for name in ("control_node", "learner_node", "replay_node", "sim_robot"):
            if name in self.procs:
                self.stop(name, timeout=15.0)

    def stop_all_once_stored(self, monitor: Monitor, timeout: float = 120.0) -> None:
        """Stop the control node first, so every transition it published has a live replay node to land
        in; a loaded machine can leave the replay node seconds behind, so wait until it has stored them
        all (its `steps`), then stop the rest."""
        self.stop("control_node")
        published = sum(int(n) for n in re.findall(r"published (\d+) transitions", self.log("control_node")))
        deadline = time.monotonic() + timeout
        while int(monitor.value("replay_node", "steps", 0)) < published and time.monotonic() < deadline:
            time.sleep(0.5)
        self.stop_all()


class Monitor(DiagnosticsWatcher):
    """A test-side ROS node: diagnostics per node (with history), the command stream, e-stop, sim pause,
    and a second sensor publisher (as a buggy driver or an attacker on the same graph would be)."""

    def __init__(self, config):
        topics = config.topics
        self.config = config
        self.history: dict[str, list[dict[str, str]]] = {}
        self.commands: list[tuple[float, tuple[float, ...]]] = []
        self._publishers = []
        super().__init__(node_name="e2e_monitor")
        self.node.create_subscription(Float64MultiArray, topics.command, self._on_command, qos.COMMAND)
        self.estop = self.node.create_publisher(Bool, topics.estop, qos.ESTOP)
        self.pause = self.node.create_client(SetBool, "/sim_robot/pause")
        self._sensor_pubs = (self.node.create_publisher(JointState, topics.joint_states, qos.SENSOR),
                             self.node.create_publisher(Imu, topics.imu, qos.SENSOR),
                             self.node.create_publisher(Odometry, topics.odometry, qos.SENSOR),
                             self.node.create_publisher(Float64MultiArray, topics.foot_contacts, qos.SENSOR))

    def publish_sensors(self, joint_names: list[str], orientation_xyzw=(0.0, 0.0, 0.0, 1.0)) -> None:
        """One reading of every sensor topic, standing in the default pose, stamped now."""
        stamp = self.node.get_clock().now().to_msg()
        joints = JointState(name=joint_names, position=[j.default for j in self.config.joints][:len(joint_names)],
                            velocity=[0.0] * len(joint_names))
        imu, odom = Imu(), Odometry()
        joints.header.stamp = imu.header.stamp = odom.header.stamp = stamp
        q = imu.orientation
        q.x, q.y, q.z, q.w = orientation_xyzw
        odom.pose.pose.orientation = q
        contacts = Float64MultiArray(data=[1.0] * len(self.config.feet))
        for publisher, msg in zip(self._sensor_pubs, (joints, imu, odom, contacts), strict=True):
            publisher.publish(msg)

    def record(self, name: str, values: dict[str, str]) -> None:
        super().record(name, values)
        self.history.setdefault(name, []).append(values)

    def _on_command(self, msg) -> None:
        with self.lock:
            self.commands.append((time.monotonic(), tuple(msg.data)))

    def value(self, node: str, key: str, default=None):
        with self.lock:
            return self.latest.get(node, {}).get(key, default)

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        timeout = max(timeout, MIN_WAIT_S)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; diagnostics: {self.latest}")

    def commands_since(self, t0: float) -> list[tuple[float, ...]]:
        with self.lock:
            return [c for t, c in self.commands if t >= t0]

    def publish_bundle(self, msg, topic: str) -> None:
        publisher = self.node.create_publisher(PolicyBundleMsg, topic, qos.POLICY_BUNDLE)
        publisher.publish(msg)
        self._publishers.append(publisher)  # transient-local: keep it alive for late matching

    def withdraw_bundles(self) -> None:
        """Destroy the bundle publishers: a node started later must not receive their old bundles
        (transient-local delivers each again, in an order nobody controls)."""
        for publisher in self._publishers:
            self.node.destroy_publisher(publisher)
        self._publishers.clear()

    def set_pause(self, paused: bool) -> None:
        assert self.pause.wait_for_service(timeout_sec=10.0), "sim_robot pause service missing"
        future = self.pause.call_async(SetBool.Request(data=paused))
        deadline = time.monotonic() + 10.0
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert future.done() and future.result().success


class RemoteParameters:
    """A node's parameters through its parameter services, as `ros2 param` reaches them. `node` must
    be spun by another thread (a DiagnosticsWatcher's)."""

    def __init__(self, node, remote: str, timeout: float = 60.0):
        from rclpy.parameter_client import AsyncParameterClient

        self.remote = remote
        self.timeout = timeout
        self.client = AsyncParameterClient(node, remote)
        assert self.client.wait_for_services(timeout_sec=timeout), f"{remote}: no parameter services"

    def _result(self, future):
        deadline = time.monotonic() + self.timeout
        while not future.done():
            assert time.monotonic() < deadline, f"{self.remote}: no answer from its parameter service"
            time.sleep(0.05)
        return future.result()

    def names(self) -> list[str]:
        return list(self._result(self.client.list_parameters()).result.names)

    def get(self, *names: str) -> dict[str, object]:
        from rclpy.parameter import parameter_value_to_python

        values = self._result(self.client.get_parameters(list(names))).values
        return {name: parameter_value_to_python(v) for name, v in zip(names, values, strict=True)}

    def set(self, name: str, value, type_=None) -> tuple[bool, str]:
        """`ros2 param set`: whether the node took it, and its reason when not. `type_` (a
        Parameter.Type) for values whose type Python cannot tell, such as an empty list."""
        from rclpy.parameter import Parameter

        result = self._result(self.client.set_parameters([Parameter(name, type_, value)])).results[0]
        return result.successful, result.reason

    def describe(self, *names: str) -> dict:
        return dict(zip(names, self._result(self.client.describe_parameters(list(names))).descriptors, strict=True))
