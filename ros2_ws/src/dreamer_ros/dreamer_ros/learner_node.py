"""learner_node: trains from the replay store and publishes signed policy bundles.

The training loop is `dreamer_core.runners.learner.LearnerRunner`; this node
maps ROS parameters to its settings, runs it in a worker thread and publishes
what it promotes on the (reliable, transient-local) policy bundle topic. It
records the robot's verdicts about versions (dreamer_msgs/PolicyEvent) through
the same thread, so only that thread touches the runner.
"""

from __future__ import annotations

import json
import queue
import threading
import traceback

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from dreamer_msgs.msg import PolicyBundle as PolicyBundleMsg
from dreamer_msgs.msg import PolicyEvent
from rclpy.node import Node

from dreamer_core.runners.learner_settings import LearnerSettings
from dreamer_ros import qos
from dreamer_ros.conversions import bundle_to_msg, diagnostic_status
from dreamer_ros.params import SEED_RANGE, declare_parameters, default_data_dir, load_node_robot_config, model_params
from dreamer_ros.spin import run_node

# Longest wait for the running training iteration at shutdown.
STOP_WAIT_S = 60.0
# ROS parameters mirror LearnerSettings (its scalar fields, with its ranges and choices); required paths
# get per-user defaults outside any checkout. docs/nodes.md#learner_node lists them.
PATH_DEFAULTS = {"replay_dir": default_data_dir("replay"), "run_dir": default_data_dir("learner"), "private_key": ""}
DESCRIPTIONS = {
    "replay_dir": "the replay store to read",
    "run_dir": "checkpoints, bundles and TensorBoard events",
    "preset": "model preset (xs, s, m, l or a YAML path); must match a resumed checkpoint's",
    "device": "auto (CUDA if available), cpu or cuda",
    "seed": "agent and sampling seed",
    "min_steps": "real steps in the store before the first update",
    "export_every_updates": "a candidate policy (trust gate, then promotion) every N updates",
    "checkpoint_every_updates": "checkpoint every N updates",
    "updates_per_iteration": "updates per loop iteration (keeps the node responsive; bounds the stop time)",
    "torch_threads": "torch.set_num_threads",
    "nice": "niceness increment of the learner process, so robot-side processes come first",
    "private_key": "Ed25519 signing key file (policy_signing.key); empty: bundles are unsigned",
    "offline_training": "while no steps arrive (robot off, between sessions), train on the stored replay "
                        "beyond the train ratio, within the offline budget",
    "offline_idle_s": "s without a new step in the store before an idle period (offline training) begins",
    "offline_max_updates": "offline updates per idle period; 0: no limit",
    "offline_max_minutes": "minutes of offline training per idle period; 0: no limit",
}
# Read by the training loop at every iteration: a set takes effect from the next one.
LIVE = ("min_steps", "export_every_updates", "checkpoint_every_updates", "updates_per_iteration",
        "offline_training", "offline_idle_s", "offline_max_updates", "offline_max_minutes")
PARAMETERS = model_params(LearnerSettings, DESCRIPTIONS, defaults=PATH_DEFAULTS, live=LIVE,
                          ranges={"seed": SEED_RANGE})


class LearnerNode(Node):
    def __init__(self):
        super().__init__("learner_node")
        values = declare_parameters(self, PARAMETERS, self._apply_parameters)
        values["private_key"] = values["private_key"] or None
        self.config = load_node_robot_config(self)
        # Here, not at the top: torch loads in the node's process only, not where a launcher reads
        # PARAMETERS to check a params file before anything starts.
        from dreamer_core.runners.learner import LearnerRunner

        self.runner = LearnerRunner(self.config, LearnerSettings(**values),
                                    log=lambda text: self.get_logger().info(text))
        self._bundle_pub = self.create_publisher(PolicyBundleMsg, self.config.topics.policy_bundles,
                                                 qos.POLICY_BUNDLE)
        self._diag_pub = self.create_publisher(DiagnosticArray, self.config.topics.diagnostics, 10)
        latest = self.runner.latest_bundle()
        if latest is not None:
            # Transient-local keeps the newest bundle available to robots that (re)start later; never
            # one the robot rejected.
            self._bundle_pub.publish(bundle_to_msg(latest))
            self.get_logger().info(f"re-published policy v{latest.version} from {self.runner.run_dir}")
        self._events: queue.Queue = queue.Queue()
        self.create_subscription(PolicyEvent, self.config.topics.policy_events, self._events.put, qos.POLICY_EVENT)
        self._stopping = threading.Event()
        self._error = ""
        self._status: dict[str, object] = {"state": "starting", **self.runner.decision_status()}
        self._next_progress_log = 1
        self._thread = threading.Thread(target=self._train_loop, daemon=True, name="learner")
        self._thread.start()
        self.create_timer(1.0, self._publish_diagnostics)

    def _apply_parameters(self, changes: dict) -> None:
        # One reference swap: the training thread sees the old settings or the new ones, never a mix.
        self.runner.settings = LearnerSettings.model_validate({**dict(self.runner.settings), **changes})
        self.get_logger().info(f"settings changed: {changes}")

    def _record_events(self) -> None:
        while True:
            try:
                msg = self._events.get_nowait()
            except queue.Empty:
                return
            try:
                values = json.loads(msg.values_json) if msg.values_json else {}
            except json.JSONDecodeError:
                values = {}
            self.runner.record_policy_event(msg.robot_id, int(msg.version), msg.event, msg.reason,
                                            values if isinstance(values, dict) else {})

    def _train_loop(self) -> None:
        waiting_logged = False
        while not self._stopping.is_set():
            updates_before = self.runner.updates
            try:
                self._record_events()
                bundles = self.runner.iterate()
                self._error = ""
            except Exception as exc:
                # e.g. a batch with non-finite values (ValueError) or a chunk being replaced on disk.
                self._error = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"learner iteration failed, retrying in 1 s: {self._error}")
                self.get_logger().debug(traceback.format_exc())
                self._stopping.wait(1.0)
                continue
            for bundle in bundles:
                self._bundle_pub.publish(bundle_to_msg(bundle))
            updates = self.runner.updates
            if updates >= self._next_progress_log:
                self._next_progress_log = updates + 50
                self.get_logger().info(
                    f"update {updates}, policy v{self.runner.state.policy_version}, "
                    f"{self.runner.replay_steps} replay steps"
                )
            ready, owed = self.runner.ready(), self.runner.updates_owed()
            # Diagnostics read this snapshot; only this thread touches the runner.
            self._status = {
                "state": "training" if ready else "waiting for data",
                "updates": updates, "policy_version": self.runner.state.policy_version,
                "replay_steps": self.runner.replay_steps, "updates_owed": owed,
                "offline": self.runner.offline.status(self.runner.settings),
                "offline_updates": self.runner.state.offline_updates,
                **self.runner.decision_status(),
            }
            if not ready:
                if not waiting_logged:
                    self.get_logger().info(
                        f"waiting for {self.runner.settings.min_steps} real steps in {self.runner.settings.replay_dir}"
                    )
                    waiting_logged = True
                self._stopping.wait(0.5)
            elif updates == updates_before:
                self._stopping.wait(0.1)  # the train ratio is met (and no offline budget): wait for real data

    def _publish_diagnostics(self) -> None:
        values = {**self._status, "device": self.runner.device, "last_error": self._error}
        level = DiagnosticStatus.WARN if self._error else DiagnosticStatus.OK
        status = diagnostic_status("learner_node", self.config.robot_id, level, values.pop("state"), values)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)

    def stop(self) -> None:
        """Finish the running iteration (at most `updates_per_iteration` updates), then checkpoint."""
        self._stopping.set()
        self._thread.join(timeout=STOP_WAIT_S)
        if self._thread.is_alive():
            # Checkpointing now would race the training thread; the last periodic checkpoint stands.
            self.get_logger().error(f"training iteration still running after {STOP_WAIT_S:.0f} s; "
                                    f"no final checkpoint (lower updates_per_iteration)")
            return
        self.runner.checkpoint()
        self.runner.close()
        self.get_logger().info(f"stopped at update {self.runner.updates}; checkpoint saved")


def main(args=None) -> None:
    run_node(LearnerNode, args)
