"""dreamer-stack: start a stack's nodes where launch_ros is not installed.

    dreamer-stack sim --robot a1_sim --minutes 3 --run-dir runs/demo [--params-file my_params.yaml]
    dreamer-stack sim --sessions 3 --session-minutes 2 --between-minutes 5   (daily sessions, compressed)
    dreamer-stack keystore create|check KEYSTORE ...   (SROS2, see docs/security.md)

It first checks the robot config, the params file, the preset, the signing keys and the run
directory and starts nothing when one is unusable. Then it starts the same executables with the same
parameter files as the launch files in launch/ (both read dreamer_ros.stacks), writes each
node's output to <run_dir>/logs/, shows progress from /diagnostics, records diagnostics,
the robot's policy events and real returns into <run_dir>/launcher/, and stops everything
cleanly (SIGINT, then SIGKILL after a grace period) at the end or on Ctrl-C. Stacks with a
learner end by writing the session report <run_dir>/report.html.

With --sessions N the sim stack runs N robot sessions: the robot's nodes (sim_robot,
control_node) run for --session-minutes, stop (the session is stored), and while they are off for
--between-minutes the replay node and the learner keep running, the learner training offline on
the stored replay; then the robot starts again with a new session id. The end prints the mean
return of each session's complete episodes, its reward per step and the versions that ran in it.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection
from pathlib import Path

import yaml
from ament_index_python.packages import get_package_prefix, get_package_share_directory

from dreamer_core.config import DEFAULT_PRESET, load_agent_config
from dreamer_core.report.run_layout import RunLayout
from dreamer_core.report.run_record import RunRecorder
from dreamer_core.robots.config import ConfigError, RobotConfig, load_robot_config
from dreamer_ros import keystore, qos
from dreamer_ros.conversions import status_node
from dreamer_ros.params import installed_robot_config_path
from dreamer_ros.ros_graph import monitor_topics
from dreamer_ros.stacks import SIGNING_STACKS, STACKS, NodeSpec, ParamsFileError, check_signing_keys, stack_nodes

STOP_ORDER = ("control_node", "learner_node", "replay_node", "sim_robot")
# The nodes a sessions run stops and starts again for each session (the simulated robot).
ROBOT_NODES = ("sim_robot", "control_node")
# Beside the default run folders (runs/<stack>-<timestamp>): one key pair for every run started here.
DEFAULT_KEYS_DIR = Path("runs") / "keys"
PROGRESS_EVERY_S = 10.0
# Progress lines between two reads of the replay store and the learner state for TensorBoard.
RECORD_EVERY_LINES = 3
# Longest gate-decision reason shown on the progress line (the report and the learner log have it all).
REASON_CHARS = 90


class StackError(Exception):
    """Why a stack cannot start: names the file or setting and what to do. Nothing was started."""


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
        self.logs = RunLayout(run_dir).logs
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, names: Collection[str] | None = None) -> None:
        """Start the nodes named in `names` (default: every node of the stack)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        params_dir = RunLayout(self.run_dir).params
        params_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            if names is not None and spec.name not in names:
                continue
            log = open(self.logs / f"{spec.name}.log", "ab")  # noqa: SIM115 - lives as long as the process
            self.processes[spec.name] = subprocess.Popen(
                node_command(spec, params_dir), stdout=log, stderr=subprocess.STDOUT
            )
            print(f"[dreamer-stack] started {spec.name} (pid {self.processes[spec.name].pid})", flush=True)

    def dead(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def why_exited(self, name: str, lines: int = 5) -> str:
        """Exit status and the last lines of `name`'s log: the cause, without opening the file."""
        tail = (self.logs / f"{name}.log").read_text(errors="replace").strip().splitlines()[-lines:]
        return f"{name} exited with status {self.processes[name].returncode}:\n" + "\n".join(
            f"    {line}" for line in tail)

    def stop(self, grace_s: float = 20.0, names: Collection[str] | None = None) -> None:
        """Stop the running nodes named in `names` (default: all) in STOP_ORDER; they can be started again."""
        running = [n for n in self.processes if names is None or n in names]
        for name in sorted(running, key=lambda n: STOP_ORDER.index(n) if n in STOP_ORDER else 0):
            if not stop_process(self.processes.pop(name), grace_s):
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
    """Collects the newest /diagnostics values per node and, when given the topic, the robot's policy
    events (spun in a background thread)."""

    def __init__(self, topic: str = "/diagnostics", node_name: str = "dreamer_stack_monitor", ros_args=None,
                 policy_events_topic: str | None = None):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from dreamer_msgs.msg import PolicyEvent
        from rclpy.signals import SignalHandlerOptions

        self._owns_context = not rclpy.ok()
        if self._owns_context:
            # Ctrl-C is the runner's to handle (it stops the nodes); rclpy's handler would end this context first.
            rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(node_name)
        self.latest: dict[str, dict[str, str]] = {}
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.node.create_subscription(DiagnosticArray, topic, self._on_diag, 50)
        if policy_events_topic:
            self.node.create_subscription(PolicyEvent, policy_events_topic, self._on_policy_event, qos.POLICY_EVENT)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    @classmethod
    def for_stack(cls, config: RobotConfig, namespace: str, ros_args=None) -> DiagnosticsWatcher:
        """The monitor as dreamer-stack runs it for `config`'s robot in `namespace`."""
        diagnostics, policy_events = monitor_topics(config.topics, namespace)
        return cls(diagnostics, ros_args=ros_args, policy_events_topic=policy_events)

    def _spin(self) -> None:
        import rclpy

        while self._running:
            rclpy.spin_once(self.node, timeout_sec=0.05)

    def _on_diag(self, msg) -> None:
        with self.lock:
            for status in msg.status:
                self.record(status_node(status), {kv.key: kv.value for kv in status.values})

    def _on_policy_event(self, msg) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self.lock:
            self.events.append({"stamp": stamp, "robot_id": msg.robot_id, "version": int(msg.version),
                                "event": msg.event, "reason": msg.reason, "values_json": msg.values_json})

    def record(self, name: str, values: dict[str, str]) -> None:
        self.latest[name] = values

    def forget(self, names: Collection[str]) -> None:
        """Drop the newest values of stopped nodes: the progress line must not show them as running."""
        with self.lock:
            for name in names:
                self.latest.pop(name, None)

    def snapshot(self) -> dict[str, dict[str, str]]:
        with self.lock:
            return {name: dict(values) for name, values in self.latest.items()}

    def take_events(self) -> list[dict]:
        """The policy events received since the last call."""
        with self.lock:
            events, self.events = self.events, []
        return events

    def line(self) -> str:
        return progress_line(self.snapshot())

    def close(self) -> None:
        import rclpy

        # Stop spinning before the node goes: a thread still inside rclpy at exit aborts the process.
        self._running = False
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        if self._owns_context:
            rclpy.try_shutdown()


def progress_line(latest: dict[str, dict[str, str]]) -> str:
    """The progress line from the newest diagnostics per node: what runs and how well it does, the
    learner's last decision and why, the robot's last verdict on a version, the counters; "-" for
    what a node has not reported (yet)."""
    c, r, learner = (latest.get(name, {}) for name in ("control_node", "replay_node", "learner_node"))
    canary = c.get("canary", "none") or "none"
    running = f"policy v{_text(c, 'policy_version')}" + ("" if canary == "none" else f" (canary {canary})")
    mean = _text(c, "episode_return_mean", number=True)
    real = f"return {mean}" + ("" if mean == "-" else f" (v{_text(c, 'episode_return_version')}, last 10)")
    decision = _text(learner, "last_decision")
    reason = learner.get("last_decision_reason", "")
    if decision != "-" and reason:
        decision += f": {_cut(reason)}"
    # The robot's newest verdict on a version (canary passed, rolled back, forced, blocked), once it has one.
    verdict = c.get("last_verdict", "")
    robot = f" | robot: {_cut(verdict)}" if verdict else ""
    # Offline training (between sessions), once it has begun.
    offline = learner.get("offline", "")
    offline = f", offline {offline}" if offline.startswith(("training", "budget spent")) else ""
    return (f"{running} | {real} | last decision: {decision}{robot} | episodes {_count(c, 'episodes')} "
            f"swaps {_count(c, 'swaps')} watchdog {_text(c, 'watchdog')} | replay {_count(r, 'steps')} steps "
            f"| learner {_count(learner, 'updates')} updates{offline}")


def _cut(text: str) -> str:
    return f"{text[:REASON_CHARS]}{'…' if len(text) > REASON_CHARS else ''}"


def _text(values: dict[str, str], key: str, number: bool = False) -> str:
    """A diagnostics value for the progress line; "-" when the node has not reported it (yet)."""
    value = values.get(key, "")
    if not value:
        return "-"
    if number:
        try:
            return f"{float(value):.2f}"
        except ValueError:
            return value
    return value


def _count(values: dict[str, str], key: str) -> str:
    """A counter as an integer ("996", never "996.000"); "-" when not reported."""
    value = _text(values, key)
    try:
        return str(int(float(value)))
    except ValueError:
        return value


def secure_stack(args: argparse.Namespace, specs: list[NodeSpec]) -> list[str]:
    """SROS2 for this run: check the keystore, give each node its enclave, export the security
    environment (the nodes inherit it); returns the monitor's rclpy arguments."""
    env, warnings = keystore.use_keystore(args.keystore, specs, robot=args.robot, stack=args.stack,
                                          namespace=args.namespace, monitor=True)
    for warning in warnings:
        print(f"[dreamer-stack] WARNING: {warning}", file=sys.stderr)
    os.environ.update(env)
    return keystore.enclave_ros_args(keystore.monitor_enclave(args.namespace))


def start_watcher(config: RobotConfig, namespace: str, ros_args: list[str] | None) -> DiagnosticsWatcher:
    """The /diagnostics monitor; with SROS2 it is the first secured participant, so a middleware that
    cannot enforce security stops the run here, before any node starts."""
    try:
        return DiagnosticsWatcher.for_stack(config, namespace, ros_args=ros_args)
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
    parser.add_argument("--keys-dir", type=Path, default=DEFAULT_KEYS_DIR,
                        help="policy signing keys, made by `dreamer-policy keygen --out DIR` "
                             f"(default {DEFAULT_KEYS_DIR})")
    parser.add_argument("--allow-unsigned", action="store_true", help="DEVELOPMENT ONLY: accept unsigned bundles")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"learner model preset (default {DEFAULT_PRESET})")
    parser.add_argument("--keystore", type=Path, default=None,
                        help="SROS2 keystore: authenticate, encrypt and enforce permissions (docs/security.md)")
    parser.add_argument("--params-file", type=Path, default=None,
                        help="ROS params file for the nodes, over the installed defaults (docs/nodes.md#params-files)")
    sessions = parser.add_argument_group("sessions (sim stack)", "several robot sessions with offline training "
                                                                 "in between, instead of --minutes")
    sessions.add_argument("--sessions", type=int, default=None, metavar="N", help="run N robot sessions (N >= 1)")
    sessions.add_argument("--session-minutes", type=float, default=None, metavar="M",
                          help="length of each session (> 0; required with --sessions)")
    sessions.add_argument("--between-minutes", type=float, default=0.0, metavar="B",
                          help="break between two sessions: the robot is off, the learner trains on the stored "
                               "replay (>= 0, default 0)")
    args = parser.parse_args(argv)
    if problem := argument_problem(args):
        parser.error(problem)
    return args


def argument_problem(args: argparse.Namespace) -> str | None:
    """Why the run lengths asked for cannot be run, or None."""
    for option in ("minutes", "session_minutes", "between_minutes"):
        value = getattr(args, option)
        if value is not None and not math.isfinite(value):
            return f"--{option.replace('_', '-')} must be a finite number of minutes, got {value:g}"
    if args.minutes < 0:
        return f"--minutes must be >= 0 (0 = until Ctrl-C), got {args.minutes:g}"
    if args.sessions is None:
        if args.session_minutes is not None or args.between_minutes:
            return "--session-minutes and --between-minutes need --sessions N"
        return None
    if args.stack != "sim":
        return (f"--sessions needs the sim stack, not {args.stack}: it stops and starts the simulated robot "
                "between sessions")
    if args.sessions < 1:
        return f"--sessions must be at least 1, got {args.sessions}"
    if args.minutes:
        return "--minutes does not apply to a sessions run: give --session-minutes (and --between-minutes)"
    if args.session_minutes is None or args.session_minutes <= 0:
        given = "none" if args.session_minutes is None else f"{args.session_minutes:g}"
        return f"--sessions needs --session-minutes M with M > 0, got {given}"
    if args.between_minutes < 0:
        return f"--between-minutes must be >= 0, got {args.between_minutes:g}"
    return None


def check_robot_config(value: str, stack: str) -> RobotConfig:
    """The robot config the nodes will load, or a StackError naming the file and every bad key."""
    try:
        path = installed_robot_config_path(value).resolve()
    except ConfigError as exc:
        raise StackError(f"robot config: {exc}") from None
    try:
        config = load_robot_config(path)
    except ConfigError as exc:
        raise StackError(f"robot config {path} is invalid (docs/robot_config.md):\n  "
                         + str(exc).replace("\n", "\n  ")) from None
    if stack == "sim" and config.sim is None:
        raise StackError(f"robot config {path} has no `sim` section: the sim stack simulates the robot from it "
                         "(docs/robot_config.md#sim); use the onboard/offboard stacks for a real robot")
    return config


def preflight(args: argparse.Namespace, run_dir: Path) -> tuple[RobotConfig, list[NodeSpec]]:
    """Check everything the nodes would otherwise each fail on after starting: robot config, params
    file, preset, signing keys and the run directory; then the nodes to start. Raises StackError;
    nothing is started either way."""
    config = check_robot_config(args.robot, args.stack)
    try:
        specs = stack_nodes(
            args.stack, robot=args.robot, config_dir=Path(get_package_share_directory("dreamer_ros")) / "config",
            run_dir=run_dir, namespace=args.namespace, keys_dir=args.keys_dir, allow_unsigned=args.allow_unsigned,
            preset=args.preset, params_file=args.params_file, offline_training=args.sessions is not None,
        )
    except ParamsFileError as exc:
        raise StackError(f"--params-file: {exc}") from None
    if args.stack in SIGNING_STACKS:
        try:
            load_agent_config(args.preset)
        except ValueError as exc:
            raise StackError(f"--preset: {exc}") from None
    try:
        check_signing_keys(args.stack, args.keys_dir)
    except (OSError, ValueError) as exc:
        raise StackError(f"signing key: {exc}") from None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as exc:
        raise StackError(f"run directory {run_dir} is not writable ({exc.strerror}); choose another "
                         "with --run-dir") from None
    return config, specs


def print_outputs(run_dir: Path, keys_dir: Path) -> None:
    """Where the run's outputs are: only those that exist."""
    layout = RunLayout(run_dir)
    outputs = [
        ("node logs", layout.logs, ""),
        ("replay data", layout.replay, f"dreamer-replay info {layout.replay}"),
        ("policy bundles", layout.bundles, "dreamer-policy inspect FILE"),
        ("checkpoints", layout.learner, ""),
        ("TensorBoard events", layout.learner_tensorboard, f"tensorboard --logdir {run_dir}"),
        ("robot-side records", layout.launcher, "diagnostics, policy events, real returns (docs/report.md)"),
        ("signing keys", keys_dir, ""),
    ]
    for label, path, hint in outputs:
        if path.exists():
            print(f"  {label + ':':<21} {path}" + (f"   ({hint})" if hint else ""))


def record(recorder: RunRecorder, watcher: DiagnosticsWatcher, replay: bool) -> None:
    """Hand what the watcher saw to the recorder; with `replay`, also read new episodes and decisions."""
    recorder.diagnostics(watcher.snapshot())
    for event in watcher.take_events():
        recorder.policy_event(**event)
    if replay:
        recorder.replay()
        recorder.decisions()


class Progress:
    """The progress line every PROGRESS_EVERY_S, and what the recorder keeps, over a run's phases."""

    def __init__(self, watcher: DiagnosticsWatcher, recorder: RunRecorder):
        self.watcher = watcher
        self.recorder = recorder
        self.lines = 0

    def watch(self, stack: Stack, minutes: float, phase: str = "") -> list[str]:
        """Show progress for `minutes` (0: until Ctrl-C), or until a node exits: returns those that did."""
        started = time.monotonic()
        deadline = started + minutes * 60 if minutes > 0 else float("inf")
        while time.monotonic() < deadline:
            time.sleep(min(PROGRESS_EVERY_S, max(0.1, deadline - time.monotonic())))
            print(f"[dreamer-stack] {phase}{(time.monotonic() - started) / 60:4.1f} min | {self.watcher.line()}",
                  flush=True)
            self.lines += 1
            record(self.recorder, self.watcher, replay=self.lines % RECORD_EVERY_LINES == 0)
            dead = stack.dead()
            if dead:
                print(f"[dreamer-stack] node(s) exited early: {dead}; see {stack.logs}", file=sys.stderr)
                for name in dead:
                    print(f"[dreamer-stack] {stack.why_exited(name)}", file=sys.stderr)
                return dead
        return []

    def stopped(self, names: Collection[str]) -> None:
        """Nodes were stopped: record their last values (a session's final timing), then leave them
        off the progress line."""
        record(self.recorder, self.watcher, replay=False)
        self.watcher.forget(names)


def run_sessions(stack: Stack, progress: Progress, sessions: int, session_minutes: float,
                 between_minutes: float) -> list[str]:
    """Replay node and learner for the whole run; the robot's nodes for each session, off in the breaks.
    Returns the nodes that exited early (the run stops there)."""
    stack.start([spec.name for spec in stack.specs if spec.name not in ROBOT_NODES])
    for number in range(1, sessions + 1):
        print(f"[dreamer-stack] session {number}/{sessions}: the robot runs for {session_minutes:g} min", flush=True)
        stack.start(ROBOT_NODES)
        dead = progress.watch(stack, session_minutes, f"session {number}/{sessions} | ")
        if dead:
            return dead
        print(f"[dreamer-stack] session {number}/{sessions} ends: stopping the robot", flush=True)
        stack.stop(names=ROBOT_NODES)
        progress.stopped(ROBOT_NODES)
        if stored := stored_session(stack.logs):
            print(f"[dreamer-stack] session {number}/{sessions}: control_node {stored}", flush=True)
        if number < sessions and between_minutes > 0:
            print(f"[dreamer-stack] break {number}/{sessions - 1}: robot off for {between_minutes:g} min; the learner "
                  "trains on the stored replay (offline_training)", flush=True)
            dead = progress.watch(stack, between_minutes, f"break {number}/{sessions - 1} | ")
            if dead:
                return dead
    return []


def stored_session(logs: Path) -> str:
    """What the control node said last about its session's transitions (`published N transitions in
    session S`, or that they are not stored); empty when it said nothing."""
    lines = (logs / "control_node.log").read_text(errors="replace").splitlines()
    said = [line for line in lines if "transitions in session" in line]
    return said[-1].split("]: ", 1)[-1] if said else ""


def print_session_returns(run_dir: Path) -> None:
    """Each session's mean return of complete episodes, reward per step and the versions that ran in it."""
    from dreamer_core.report.run_data import load_run
    from dreamer_core.report.session_returns import return_per_session

    if not (RunLayout(run_dir).replay / "store.json").is_file():
        print("[dreamer-stack] no session was stored")
        return
    for session in return_per_session(load_run(run_dir)):
        print(f"[dreamer-stack] {session.line()}")


def write_session_report(run_dir: Path) -> bool:
    """Write the report; print its verdict (and, when no learned version beat v0, the learner's last
    decision: why not yet), then the report's path as the last line."""
    from dreamer_core.report.page import write_page  # matplotlib: only where a report is written
    from dreamer_core.report.run_data import load_run
    from dreamer_core.report.verdict import verdict

    try:
        data = load_run(run_dir)
        path = write_page(data)
    except Exception as exc:  # the run itself is done and stored: say so, and how to retry
        print(f"[dreamer-stack] the session report failed: {type(exc).__name__}: {exc}\n"
              f"  retry with: dreamer-report {run_dir}", file=sys.stderr)
        return False
    outcome = verdict(data.complete_returns_by_version())
    print(f"[dreamer-stack] {outcome.line}")
    if not outcome.beat and data.learner_updates is not None and data.learner_updates <= data.actor_warmup_updates:
        warmup = data.actor_warmup_updates
        after = f"; the preset trains the actor only after {warmup} (actor_warmup_updates)" if warmup else ""
        print(f"[dreamer-stack] why: the actor has not trained yet: the learner made {data.learner_updates} "
              f"updates{after}, so every version so far acts as v0; a longer run gets there "
              "(docs/simulation.md#the-walking-task)")
    if not outcome.beat and data.decisions:
        last = data.decisions[-1]
        print(f"[dreamer-stack] the learner's last decision: v{last.version} "
              f"{'promoted' if last.promoted else 'held back'} at update {last.update}: {last.summary}")
    print(f"[dreamer-stack] session report: {path}")
    return True


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keystore"]:
        return keystore.main(argv[1:])
    args = parse_args(argv)
    run_dir = (args.run_dir or Path("runs") / f"{args.stack}-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    args.keys_dir = args.keys_dir.resolve()
    try:
        config, specs = preflight(args, run_dir)
        watcher = start_watcher(config, args.namespace, secure_stack(args, specs) if args.keystore else None)
    except (StackError, keystore.KeystoreError) as exc:
        print(f"[dreamer-stack] cannot start, nothing was started: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("[dreamer-stack] interrupted before any node started", file=sys.stderr)
        return 130
    stack = Stack(specs, run_dir)
    # The robot computer has no TensorBoard: there only the JSON lines (its timing reaches the learner
    # host's runner on /diagnostics too).
    recorder = RunRecorder(run_dir, tensorboard=args.stack in SIGNING_STACKS)
    # docker stop / systemd send SIGTERM: stop the nodes as cleanly as on Ctrl-C. SIGINT explicitly too:
    # a shell starts background jobs with it ignored, and Python then keeps ignoring it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    progress = Progress(watcher, recorder)
    stopped_by_user = False
    dead: list[str] = []
    try:
        if args.sessions is None:
            stack.start()
            dead = progress.watch(stack, args.minutes)
        else:
            dead = run_sessions(stack, progress, args.sessions, args.session_minutes, args.between_minutes)
    except KeyboardInterrupt:
        stopped_by_user = True
    finally:
        # A terminal's Ctrl-C reaches the nodes too; more of them must not cut the stop short.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _already_stopping)
        print("[dreamer-stack] stopping ...", flush=True)
        stack.stop()
        record(recorder, watcher, replay=True)  # the last episodes and decisions, now on disk
        watcher.close()
        recorder.close()
    print(f"[dreamer-stack] done{' (interrupted)' if stopped_by_user else ''}. Outputs:")
    print_outputs(run_dir, args.keys_dir)
    if args.sessions is not None:
        print_session_returns(run_dir)
    reported = write_session_report(run_dir) if args.stack in SIGNING_STACKS else True
    return 1 if dead or not reported else 0


if __name__ == "__main__":
    sys.exit(main())
