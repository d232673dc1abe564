"""replay_node: admits each Transition and adds it to the durable replay store.

All storage logic (chunks, durability, de-duplication, gaps, eviction) is in
`dreamer_core.storage.ReplayStore`, and what is refused (unknown robots, forged seqs,
session floods, implausible values) in `dreamer_core.storage.IngestGuard`; this node
subscribes, checks, adds and reports.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from dreamer_msgs.msg import Transition as TransitionMsg
from rclpy.node import Node

from dreamer_core.storage import AdmissionLimits, IngestGuard, Refused, ReplayStore, ReplayWriteError
from dreamer_core.storage.transition_msg import transition_from_msg
from dreamer_ros import qos
from dreamer_ros.conversions import diagnostic_status
from dreamer_ros.params import Param, declare_parameters, default_data_dir, load_node_robot_config
from dreamer_ros.spin import run_node

# At a stop signal, wait for the control node's closing transition (it stops its loop first, up to about
# 3 s) and what is in flight; launch escalates to SIGTERM after 5 s.
DRAIN_MAX_S = 3.5
DRAIN_QUIET_S = 0.3

# The store's parameters: fixed while the store is open (docs/nodes.md#replay_node).
STORE_PARAMETERS = {
    "replay_dir": Param(default_data_dir("replay"), "the replay store directory"),
    "durability_interval": Param(1.0, "s between fsyncs of the open tail: a kill -9 loses at most this much",
                                 range=(0.01, 3600.0)),
    "chunk_length": Param(1024, "steps per sealed chunk file", range=(1, 1_000_000)),
    "capacity_steps": Param(0, "evict the oldest chunks above this many steps; 0: unlimited", range=(0, None)),
}
# Admission limits (names as in AdmissionLimits, which checks them): live, the next transition is
# checked against the new value.
ADMISSION_PARAMETERS = {
    "max_abs_obs": Param(1e4, "an observation element beyond this magnitude is refused (bad_obs)",
                         range=(0.0, None), live=True),
    "max_abs_reward": Param(1e4, "a reward beyond this magnitude is refused (bad_reward)", range=(0.0, None),
                            live=True),
    "seq_window": Param(3000, "a seq more than this far ahead of its session's next one is refused (seq_ahead)",
                        range=(1, None), live=True),
    "seq_resync_run": Param(500, "... unless this many such seqs arrive in a row (a producer back after an "
                                 "outage); 0: never", range=(0, None), live=True),
    "new_session_burst": Param(8, "new sessions admitted at once ...", range=(0, None), live=True),
    "new_sessions_per_hour": Param(60.0, "... and refilled at this rate (session_rate)", range=(0.0, None),
                                   live=True),
}


def robot_id_parameters(robot_id: str) -> dict[str, Param]:
    """Which robots' transitions are stored: by default the robot of the node's robot config."""
    return {"allowed_robot_ids": Param([robot_id], "robot_ids recorded; any other is refused (unknown_robot)",
                                       live=True)}


class ReplayNode(Node):
    def __init__(self):
        super().__init__("replay_node")
        # Callbacks run in the executor thread, stop() in the main one: the lock makes "stop taking
        # messages, store what arrived, close" one step that no late callback can cut into.
        self._lock = threading.Lock()
        store = declare_parameters(self, STORE_PARAMETERS)
        admission = declare_parameters(self, ADMISSION_PARAMETERS, self._apply_admission)
        self.config = load_node_robot_config(self)
        robot_ids = declare_parameters(self, robot_id_parameters(self.config.robot_id),
                                       self._apply_admission)["allowed_robot_ids"]
        spec = self.config.policy_spec()
        directory = Path(store["replay_dir"]).expanduser()
        self.store = ReplayStore(
            directory, spec=spec, chunk_length=store["chunk_length"],
            durability_interval=store["durability_interval"], capacity_steps=store["capacity_steps"] or None,
        )
        limits = AdmissionLimits.for_spec(spec, list(robot_ids), **admission)
        self.guard = IngestGuard(limits, next_seq=self.store.next_seq)
        self._accepting = True
        self._last_arrival = time.monotonic()  # of the newest transition (start: none yet)
        self._episode_open = False  # the newest transition did not end its episode: more is coming
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
        self.create_timer(min(0.2, store["durability_interval"]), self._flush_if_due)
        self.create_timer(1.0, self._publish_diagnostics)

    def _apply_admission(self, changes: dict) -> None:
        """Live admission limits: AdmissionLimits refuses an inconsistent set (ValueError)."""
        changes = dict(changes)
        if "allowed_robot_ids" in changes:
            changes["robot_ids"] = frozenset(changes.pop("allowed_robot_ids"))
        with self._lock:
            self.guard.limits = replace(self.guard.limits, **changes)
        self.get_logger().info(f"admission limits changed: {changes}")

    def _on_transition(self, msg: TransitionMsg) -> None:
        with self._lock:
            if not self._accepting:
                return  # stopping: the store is closed or closing
            self.received += 1
            self._last_arrival, self._episode_open = time.monotonic(), not msg.is_last
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

    def drain(self) -> None:
        """Called by run_node on a stop signal while callbacks still run: a joint Ctrl-C reaches the
        control node too, which then closes its episode with one last transition. Take it (and what
        is still in flight) before stopping: until the newest transition ended its episode and none
        came for DRAIN_QUIET_S, at most DRAIN_MAX_S."""
        deadline = time.monotonic() + DRAIN_MAX_S
        while time.monotonic() < deadline:
            with self._lock:
                quiet = time.monotonic() - self._last_arrival
                if not self._episode_open and quiet >= DRAIN_QUIET_S:
                    return
            time.sleep(0.05)

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
