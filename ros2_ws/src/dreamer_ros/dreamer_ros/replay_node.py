"""replay_node: ingests every Transition into the durable replay store.

All storage logic (chunks, durability, de-duplication, gaps, eviction) is in
`dreamer_core.storage.ReplayStore`; this node subscribes, adds and reports.
"""

from __future__ import annotations

from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from dreamer_msgs.msg import Transition as TransitionMsg
from rclpy.node import Node

from dreamer_core.storage import ReplayStore
from dreamer_core.storage.transition_msg import transition_from_msg
from dreamer_ros import qos
from dreamer_ros.conversions import diagnostic_status
from dreamer_ros.params import load_node_robot_config
from dreamer_ros.spin import run_node


class ReplayNode(Node):
    def __init__(self):
        super().__init__("replay_node")
        self.declare_parameter("replay_dir", "runs/replay")
        self.declare_parameter("durability_interval", 1.0)
        self.declare_parameter("chunk_length", 1024)
        self.declare_parameter("capacity_steps", 0)  # 0 = unlimited
        self.config = load_node_robot_config(self)
        directory = Path(self.get_parameter("replay_dir").value).expanduser()
        capacity = self.get_parameter("capacity_steps").value or None
        self.store = ReplayStore(
            directory, obs_dim=self.config.obs_dim, act_dim=self.config.act_dim,
            chunk_length=self.get_parameter("chunk_length").value,
            durability_interval=self.get_parameter("durability_interval").value,
            capacity_steps=capacity,
        )
        self.invalid = 0
        self.received = 0
        stats = self.store.stats()
        self.get_logger().info(
            f"replay store {directory}: recovered {stats['steps']} steps in {stats['sessions']} sessions"
        )
        self.create_subscription(TransitionMsg, self.config.topics.transitions, self._on_transition,
                                 qos.TRANSITION)
        self._diag_pub = self.create_publisher(DiagnosticArray, self.config.topics.diagnostics, 10)
        # An idle writer must still make its tail durable within the interval.
        self.create_timer(min(0.2, self.get_parameter("durability_interval").value), self.store.maybe_flush)
        self.create_timer(1.0, self._publish_diagnostics)

    def _on_transition(self, msg: TransitionMsg) -> None:
        self.received += 1
        try:
            result = self.store.add(transition_from_msg(msg))
        except ValueError as exc:
            self.invalid += 1
            self.get_logger().error(f"transition {msg.session_id}/{msg.seq} refused: {exc}",
                                    throttle_duration_sec=1.0)
            return
        if result == "gap":
            self.get_logger().warning(f"gap in session {msg.session_id} before seq {msg.seq}")

    def stop(self) -> None:
        self.store.close()
        self.get_logger().info(f"replay store closed: {self.store.stats()}")

    def _publish_diagnostics(self) -> None:
        stats = self.store.stats()
        gaps = stats.get("gaps", 0)
        level = DiagnosticStatus.OK if gaps == 0 and self.invalid == 0 else DiagnosticStatus.WARN
        values = {**stats, "received": self.received, "invalid": self.invalid}
        status = diagnostic_status("replay_node", self.config.robot_id, level,
                                   f"{stats['steps']} steps stored", values)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args=None) -> None:
    run_node(ReplayNode, args)
