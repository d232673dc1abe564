"""dreamer-stack: start a stack's nodes where launch_ros is not installed.

    dreamer-stack sim --robot a1_sim --minutes 3 --run-dir runs/demo
    dreamer-stack keystore create|check KEYSTORE ...   (SROS2, see docs/security.md)

It starts the same executables with the same parameter files as the launch files
in launch/ (both read dreamer_ros.stacks), writes each node's output to
<run_dir>/logs/, shows progress from /diagnostics, and stops everything cleanly
(SIGINT, then SIGKILL after a grace period) at the end or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from ament_index_python.packages import get_package_prefix, get_package_share_directory

from dreamer_core.config import DEFAULT_PRESET
from dreamer_ros import keystore
from dreamer_ros.stacks import SIGNING_STACKS, STACKS, NodeSpec, ensure_signing_keys, stack_nodes

STOP_ORDER = ("control_node", "learner_node", "replay_node", "sim_robot")


def node_command(spec: NodeSpec, params_dir: Path) -> list[str]:
    """The command line `ros2 run` + launch_ros would build for `spec`."""
    exe = Path(get_package_prefix("dreamer_ros")) / "lib" / "dreamer_ros" / spec.executable
    cmd = [str(exe), "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        cmd += ["-r", f"__ns:={spec.namespace}"]
    if spec.enclave:
        cmd += ["--enclave", spec.enclave]
    for index, item in enumerate(spec.parameters):
        if isinstance(item, dict):
            # launch_ros writes dict parameters to a temporary file too; later files win.
            path = params_dir / f"{spec.name}.{index}.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": item}}))
            item = str(path)
        cmd += ["--params-file", item]
    return cmd


class Stack:
    """The processes of one stack, started and stopped together."""

    def __init__(self, specs: list[NodeSpec], run_dir: Path):
        self.specs = specs
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        params_dir = self.run_dir / "params"
        params_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            log = open(self.logs / f"{spec.name}.log", "ab")  # noqa: SIM115 - lives as long as the process
            self.processes[spec.name] = subprocess.Popen(
                node_command(spec, params_dir), stdout=log, stderr=subprocess.STDOUT
            )
            print(f"[dreamer-stack] started {spec.name} (pid {self.processes[spec.name].pid})", flush=True)

    def dead(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def stop(self, grace_s: float = 20.0) -> None:
        names = sorted(self.processes, key=lambda n: STOP_ORDER.index(n) if n in STOP_ORDER else 0)
        for name in names:
            if not stop_process(self.processes[name], grace_s):
                print(f"[dreamer-stack] {name} ignored SIGINT for {grace_s:.0f} s; killed it", flush=True)


def stop_process(proc: subprocess.Popen, grace_s: float) -> bool:
    """SIGINT, then SIGKILL after `grace_s`; False when it had to be killed."""
    if proc.poll() is not None:
        return True
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace_s)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


class DiagnosticsWatcher:
    """Collects the newest /diagnostics values per node (spun in a background thread)."""

    def __init__(self, topic: str = "/diagnostics", node_name: str = "dreamer_stack_monitor", ros_args=None):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.signals import SignalHandlerOptions

        self._owns_context = not rclpy.ok()
        if self._owns_context:
            # Ctrl-C is the runner's to handle (it stops the nodes); rclpy's handler would end this context first.
            rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(node_name)
        self.latest: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()
        self.node.create_subscription(DiagnosticArray, topic, self._on_diag, 50)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        import rclpy

        while self._running:
            rclpy.spin_once(self.node, timeout_sec=0.05)

    def _on_diag(self, msg) -> None:
        with self.lock:
            for status in msg.status:
                self.record(status.name.split(":")[0], {kv.key: kv.value for kv in status.values})

    def record(self, name: str, values: dict[str, str]) -> None:
        self.latest[name] = values

    def line(self) -> str:
        c = self.latest.get("control_node", {})
        r = self.latest.get("replay_node", {})
        learner = self.latest.get("learner_node", {})
        return (f"policy v{c.get('policy_version', '-')} swaps {c.get('swaps', '-')} "
                f"episodes {c.get('episodes', '-')} watchdog {c.get('watchdog', '-')} | "
                f"replay {r.get('steps', '-')} steps | learner {learner.get('updates', '-')} updates")

    def close(self) -> None:
        import rclpy

        # Stop spinning before the node goes: a thread still inside rclpy at exit aborts the process.
        self._running = False
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        if self._owns_context:
            rclpy.try_shutdown()


def secure_stack(args: argparse.Namespace, specs: list[NodeSpec]) -> list[str]:
    """SROS2 for this run: check the keystore, give each node its enclave, export the security
    environment (the nodes inherit it); returns the monitor's rclpy arguments."""
    env, warnings = keystore.use_keystore(args.keystore, specs, robot=args.robot, stack=args.stack,
                                          namespace=args.namespace, monitor=True)
    for warning in warnings:
        print(f"[dreamer-stack] WARNING: {warning}", file=sys.stderr)
    os.environ.update(env)
    return keystore.enclave_ros_args(keystore.monitor_enclave(args.namespace))


def start_watcher(ros_args: list[str] | None) -> DiagnosticsWatcher:
    """The /diagnostics monitor; with SROS2 it is the first secured participant, so a middleware that
    cannot enforce security stops the run here, before any node starts."""
    try:
        return DiagnosticsWatcher(ros_args=ros_args)
    except Exception as exc:  # rclpy's RCLError, which rclpy does not export publicly
        if ros_args is None:
            raise
        raise keystore.KeystoreError(
            f"cannot start with SROS2 enforced: {exc}\n  Nothing was started: this ROS 2 middleware needs "
            "the DDS Security plugins (docs/security.md)") from exc


def _already_stopping(signum, frame) -> None:
    print("[dreamer-stack] already stopping; waiting for the nodes to finish", flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dreamer-stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", choices=sorted(STACKS), help="which nodes to start")
    parser.add_argument("--robot", default="a1_sim", help="robot config name or YAML path (default a1_sim)")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="output folder (default runs/<stack>-<timestamp>)")
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this long (0 = until Ctrl-C)")
    parser.add_argument("--namespace", default="", help="namespace of the robot's nodes")
    parser.add_argument("--keys-dir", type=Path, default=None, help="policy signing keys (default <run-dir>/keys)")
    parser.add_argument("--allow-unsigned", action="store_true", help="DEVELOPMENT ONLY: accept unsigned bundles")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"learner model preset (default {DEFAULT_PRESET})")
    parser.add_argument("--keystore", type=Path, default=None,
                        help="SROS2 keystore: authenticate, encrypt and enforce permissions (docs/security.md)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keystore"]:
        return keystore.main(argv[1:])
    args = parse_args(argv)
    run_dir = (args.run_dir or Path("runs") / f"{args.stack}-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    keys_dir = (args.keys_dir or run_dir / "keys").resolve()
    if args.stack in SIGNING_STACKS:
        ensure_signing_keys(keys_dir)
    specs = stack_nodes(
        args.stack, robot=args.robot, config_dir=Path(get_package_share_directory("dreamer_ros")) / "config",
        run_dir=run_dir, namespace=args.namespace, keys_dir=keys_dir, allow_unsigned=args.allow_unsigned,
        preset=args.preset,
    )
    try:
        watcher = start_watcher(secure_stack(args, specs) if args.keystore else None)
    except keystore.KeystoreError as exc:
        print(f"[dreamer-stack] {exc}", file=sys.stderr)
        return 2
    stack = Stack(specs, run_dir)
    # docker stop / systemd send SIGTERM: stop the nodes as cleanly as on Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    deadline = started + args.minutes * 60 if args.minutes > 0 else float("inf")
    stopped_by_user = False
    dead: list[str] = []
    try:
        stack.start()
        while time.monotonic() < deadline:
            time.sleep(min(10.0, max(0.1, deadline - time.monotonic())))
            print(f"[dreamer-stack] {(time.monotonic() - started) / 60:4.1f} min | {watcher.line()}", flush=True)
            dead = stack.dead()
            if dead:
                print(f"[dreamer-stack] node(s) exited early: {dead}; see {stack.logs}", file=sys.stderr)
                break
    except KeyboardInterrupt:
        stopped_by_user = True
    finally:
        # A terminal's Ctrl-C reaches the nodes too; more of them must not cut the stop short.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _already_stopping)
        print("[dreamer-stack] stopping ...", flush=True)
        stack.stop()
        watcher.close()
    print(f"[dreamer-stack] done{' (interrupted)' if stopped_by_user else ''}. Outputs:")
    print(f"  node logs:            {stack.logs}")
    executables = {spec.executable for spec in specs}
    if "replay_node" in executables:
        print(f"  replay data:          {run_dir / 'replay'}   (dreamer-replay info {run_dir / 'replay'})")
    if "learner_node" in executables:
        learner = run_dir / "learner"
        print(f"  policy bundles:       {learner / 'bundles'}   (dreamer-policy inspect FILE)")
        print(f"  checkpoints:          {learner}")
        print(f"  TensorBoard events:   {learner / 'tensorboard'}   (tensorboard --logdir {learner})")
    print(f"  signing keys:         {keys_dir}")
    return 1 if dead else 0


if __name__ == "__main__":
    sys.exit(main())
