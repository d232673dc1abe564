"""replay_node: admits each Transition and adds it to the durable replay store.

All storage logic (chunks, durability, de-duplication, gaps, eviction) is in
`dreamer_core.storage.ReplayStore`, and what is refused (unknown robots, forged seqs,
session floods, implausible values) in `dreamer_core.storage.IngestGuard`; this node
subscribes, checks, adds and reports.
"""

from __future__ import annotations

import threading
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from dreamer_msgs.msg import Transition as TransitionMsg
from rclpy.node import Node

from dreamer_core.storage import AdmissionLimits, IngestGuard, Refused, ReplayStore, ReplayWriteError
from dreamer_core.storage.transition_msg import transition_from_msg
from dreamer_ros import qos
from dreamer_ros.conversions import diagnostic_status
from dreamer_ros.params import default_data_dir, load_node_robot_config
from dreamer_ros.spin import run_node

# Admission parameters (names as in AdmissionLimits) and their defaults; see docs/nodes.md.
ADMISSION_DEFAULTS = {
    "max_abs_obs": 1e4,
    "max_abs_reward": 1e4,
    "seq_window": 3000,
    "seq_resync_run": 500,
    "new_session_burst": 8,
    "new_sessions_per_hour": 60.0,
}


class ReplayNode(Node):
    def __init__(self):
        super().__init__("replay_node")
        self.declare_parameter("replay_dir", default_data_dir("replay"))
        self.declare_parameter("durability_interval", 1.0)
        self.declare_parameter("chunk_length", 1024)
        self.declare_parameter("capacity_steps", 0)  # 0 = unlimited
        for name, default in ADMISSION_DEFAULTS.items():
            self.declare_parameter(name, default)
        self.config = load_node_robot_config(self)
        robot_ids = self.declare_parameter("allowed_robot_ids", [self.config.robot_id]).value
        spec = self.config.policy_spec()
        directory = Path(self.get_parameter("replay_dir").value).expanduser()
        self.store = ReplayStore(
            directory, spec=spec,
            chunk_length=self.get_parameter("chunk_length").value,
            durability_interval=self.get_parameter("durability_interval").value,
            capacity_steps=self.get_parameter("capacity_steps").value or None,
        )
        limits = AdmissionLimits.for_spec(
            spec, list(robot_ids), **{name: self.get_parameter(name).value for name in ADMISSION_DEFAULTS}
        )
        self.guard = IngestGuard(limits, next_seq=self.store.next_seq)
        # Callbacks run in the executor thread, stop() in the main one: the lock makes "stop taking
        # messages, store what arrived, close" one step that no late callback can cut into.
        self._lock = threading.Lock()
        self._accepting = True
        self.received = 0
        self.write_errors = 0
        self._write_failing: str | None = None
        self._refused_reported = 0
        stats = self.store.stats()
        self.get_logger().info(
            f"replay store {directory}: recovered {stats['steps']} steps in {stats['sessions']} sessions; "
            f"recording robot_id {sorted(limits.robot_ids)}"
        )
        self.create_subscription(TransitionMsg, self.config.topics.transitions, self._on_transition,
                                 qos.TRANSITION)
        self._diag_pub = self.create_publisher(DiagnosticArray, self.config.topics.diagnostics, 10)
        # An idle writer must still make its tail durable within the interval.
        self.create_timer(min(0.2, self.get_parameter("durability_interval").value), self._flush_if_due)
        self.create_timer(1.0, self._publish_diagnostics)

    def _on_transition(self, msg: TransitionMsg) -> None:
        with self._lock:
            if not self._accepting:
                return  # stopping: the store is closed or closing
            self.received += 1
            try:
                result = self.store.add(self.guard.check(transition_from_msg(msg)))
            except Refused as exc:
                self.get_logger().warning(f"transition {msg.session_id!r:.60}/{msg.seq} refused: {exc}",
                                          throttle_duration_sec=1.0)
                return
            except ReplayWriteError as exc:
                self._write_failed(exc)
                return
        if result == "gap":
            self.get_logger().warning(f"gap in session {msg.session_id} before seq {msg.seq}")

    def _flush_if_due(self) -> None:
        with self._lock:
            if not self._accepting:
                return
            try:
                if self._write_failing is None:
                    self.store.maybe_flush()
                else:  # retry until one flush gets everything held in memory to disk
                    self.store.flush()
                    self._write_failing = None
            except ReplayWriteError as exc:
                self._write_failed(exc)

    def _write_failed(self, exc: ReplayWriteError) -> None:
        """The rows are held in memory and retried by the next flush; say so loudly."""
        self.write_errors += 1
        self._write_failing = str(exc)
        self.get_logger().error(str(exc), throttle_duration_sec=5.0)

    def stop(self) -> None:
        """Stop taking transitions, make what arrived durable, close the store."""
        with self._lock:
            self._accepting = False
            try:
                self.store.close()
            except ReplayWriteError as exc:
                self.get_logger().error(f"closing the replay store: {exc}")
        guard, stats = self.guard, self.store.stats()
        self.get_logger().info(
            f"stopped taking transitions: received {self.received}, admitted {guard.admitted}, "
            f"refused {guard.refused}; replay store closed with {stats['steps']} steps "
            f"({stats['pending_steps']} not durable)"
        )

    def _publish_diagnostics(self) -> None:
        with self._lock:
            if not self._accepting:
                return
            stats = self.store.stats()
            refusals = dict(self.guard.refusals)
            refused, admitted = self.guard.refused, self.guard.admitted
            failing = self._write_failing
        refused_now, self._refused_reported = refused - self._refused_reported, refused
        kinds = ", ".join(f"{kind} {n}" for kind, n in refusals.items() if n)
        message = f"{stats['steps']} steps stored"
        if failing is not None:
            level, message = DiagnosticStatus.ERROR, f"{message}; writing to disk fails: {failing}"
        elif refused_now:
            level, message = DiagnosticStatus.ERROR, f"{message}; refusing transitions ({kinds})"
        elif refused or stats["gaps"] or stats["damaged_records"] or stats["quarantine_files"]:
            level = DiagnosticStatus.WARN
            message += f"; refused earlier ({kinds})" if refused else "; gaps or damaged files (see values)"
        else:
            level = DiagnosticStatus.OK
        values = {
            **stats, "received": self.received, "admitted": admitted, "refused": refused,
            **{f"refused_{kind}": n for kind, n in refusals.items()}, "write_errors": self.write_errors,
        }
        status = diagnostic_status("replay_node", self.config.robot_id, level, message, values)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args=None) -> None:
    run_node(ReplayNode, args)
