"""control_node: the onboard lifecycle node that runs the policy at control rate.

Only ROS wiring: sensor messages are cached and copied into SensorReadings, a
fixed-rate thread calls `dreamer_core.control.Controller.tick` and publishes the
joint command and the Transitions, and bundles and operator services go to the
`PolicyManager`, whose decisions (canary verdicts, rollbacks, overrides) a timer
writes and publishes as PolicyEvents. Every decision lives in dreamer_core.control.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from functools import partial
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from dreamer_msgs.msg import PolicyBundle as PolicyBundleMsg
from dreamer_msgs.msg import PolicyEvent as PolicyEventMsg
from dreamer_msgs.msg import Transition as TransitionMsg
from dreamer_msgs.srv import PinPolicy, PolicyOverride, Rollback
from nav_msgs.msg import Odometry
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from dreamer_core.control import Controller, FixedRateLoop, InitialPolicy, PolicyManager
from dreamer_core.control.health import control_health
from dreamer_core.control.sensors import LatestMessages
from dreamer_core.control.timing import raise_process_priority, request_realtime
from dreamer_core.control.version_state import default_state_dir, state_file
from dreamer_core.deploy import PolicyRuntime, key_fingerprint, load_public_key
from dreamer_ros import qos
from dreamer_ros.conversions import bundle_from_msg, diagnostic_status, readings_from_msgs, transition_to_msg
from dreamer_ros.params import SEED_RANGE, Param, declare_parameters, load_node_robot_config
from dreamer_ros.spin import run_node

# Longest wait at stop for the replay node to acknowledge the last transitions (launch's SIGTERM comes at 5 s).
ACK_WAIT_S = 2.0
# After a reset the service refused (a paced simulator waiting for the learner), ask again this much later.
RESET_RETRY_S = 0.2
# A reset call unanswered this long (the simulator died mid-call) is given up: the robot is not held back by it.
RESET_TIMEOUT_S = 5.0
# How often the policy manager's state is written and its decisions published (a rollback is seen within this).
POLICY_EVENT_PERIOD_S = 0.1
# The node's parameters (docs/nodes.md#control_node). Live ones take effect from the next tick
# (`stall_timeout_s`: the next diagnostics); keys, paths and limits are fixed for the node's life.
PARAMETERS = {
    "autostart": Param(True, "configure and activate on start (false: wait for a lifecycle manager)"),
    "explore": Param(True, "sample actions (data collection); false: the policy's mean action. Also set by "
                           "~/set_exploration", live=True),
    "initial_policy": Param("random", "what runs before the first bundle and after a rollback to version 0: "
                                      "random (smoothed noise) or stand (the default pose)",
                            choices=InitialPolicy.MODES),
    "initial_policy_amplitude": Param(0.3, "amplitude of the random initial policy, a fraction of the normalised "
                                           "action range", range=(0.0, 1.0), live=True),
    "public_key": Param("", "Ed25519 public key file (policy_signing.pub) bundles must be signed with; "
                            "empty: every bundle is refused unless allow_unsigned"),
    "allow_unsigned": Param(False, "DEVELOPMENT ONLY: accept unsigned policy bundles"),
    "max_bundle_bytes": Param(64 * 2**20, "larger policy bundles are refused", range=(1024, 2**32)),
    "reset_service": Param("", "std_srvs/Trigger service called when an episode ends (sim: "
                               "<ns>/sim_robot/reset); empty: none"),
    "seed": Param(0, "seed of the initial policy and of the action noise", range=SEED_RANGE),
    "realtime_priority": Param(0, "SCHED_FIFO priority of the control thread (needs CAP_SYS_NICE); 0: best effort",
                               range=(0, 99)),
    "state_dir": Param("", "directory of the persisted policy-version state; empty: "
                           "$XDG_STATE_HOME/dreamer_ros"),
    "stall_timeout_s": Param(0.5, "s without a finished tick before /diagnostics reports the control loop "
                                  "stalled", range=(0.01, 60.0), live=True),
}


class ControlNode(LifecycleNode):
    def __init__(self):
        super().__init__("control_node")
        self.controller: Controller | None = None
        declare_parameters(self, PARAMETERS, self._apply_parameters)
        self.config = load_node_robot_config(self)
        if self._param("realtime_priority") > 0 and (refused := raise_process_priority()):
            self.get_logger().warning(refused)
        self.fatal_error: str | None = None  # set when the control loop dies; run_node then exits non-zero
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._activated_at = 0.0
        self._sensors = LatestMessages()
        self._reset_call = None  # (future, monotonic time sent) of the reset call in flight
        self._replay_seen = False  # a replay node was matched at some point of this session
        self._reset_retry_at = 0.0  # monotonic time before which a refused reset is not asked again
        self._last_fault: str | None = None
        self._configure_error = ""
        if self._param("autostart"):
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise SystemExit(f"control_node: configure failed: {self._configure_error}")
            self.trigger_activate()

    def _param(self, name: str):
        return self.get_parameter(name).value

    def _apply_parameters(self, changes: dict) -> None:
        """Live parameters (`ros2 param set`); before configure, on_configure reads them instead."""
        if self.controller is None:
            return
        if "explore" in changes:
            self.controller.explore = changes["explore"]
        if "initial_policy_amplitude" in changes:
            self.controller.initial_policy.amplitude = changes["initial_policy_amplitude"]

    # -- lifecycle -----------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except (OSError, ValueError) as exc:  # a missing key file, a bad parameter or state file
            self._configure_error = str(exc)
            self.get_logger().fatal(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        cfg, topics = self.config, self.config.topics
        state_dir = Path(self._param("state_dir")).expanduser() if self._param("state_dir") else default_state_dir()
        self.policies = PolicyManager(cfg.robot_id, state_path=state_file(state_dir, cfg.robot_id),
                                      canary=cfg.canary, log=self._log)
        session_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        initial = InitialPolicy(cfg.act_dim, mode=self._param("initial_policy"),
                                amplitude=self._param("initial_policy_amplitude"), seed=self._param("seed"))
        self.controller = Controller(cfg, session_id=session_id, initial_policy=initial,
                                     explore=self._param("explore"), seed=self._param("seed"),
                                     policies=self.policies)
        self.loop = FixedRateLoop(cfg.dt)
        key_path = self._param("public_key")
        self._public_key = load_public_key(key_path) if key_path else None
        if self._param("allow_unsigned"):
            self.get_logger().warning(
                "DEVELOPMENT MODE: allow_unsigned=true, this robot accepts UNSIGNED policy bundles"
            )
        elif self._public_key is None:
            self.get_logger().warning("no public_key set: every policy bundle will be refused")
        if self._public_key is not None:  # compare with the learner's "signing with key ..." line
            self.get_logger().info(f"accepting bundles signed by key {key_fingerprint(self._public_key)} ({key_path})")
        self._required = ["joints", "imu"] + (["odom"] if topics.odometry else []) + (
            ["contacts"] if topics.foot_contacts else [])
        sensors = [("joints", JointState, topics.joint_states), ("imu", Imu, topics.imu),
                   ("odom", Odometry, topics.odometry), ("contacts", Float64MultiArray, topics.foot_contacts)]
        for key, msg_type, topic in sensors:
            if topic:
                self.create_subscription(msg_type, topic, partial(self._sensors.put, key), qos.SENSOR)
        self.create_subscription(Bool, topics.estop, self._on_estop, qos.ESTOP)
        self.create_subscription(PolicyBundleMsg, topics.policy_bundles,
                                 lambda msg: self.policies.offer(bundle_from_msg(msg)), qos.POLICY_BUNDLE)
        self._cmd_pub = self.create_publisher(Float64MultiArray, topics.command, qos.COMMAND)
        self._transition_pub = self.create_publisher(TransitionMsg, topics.transitions, qos.TRANSITION)
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.diagnostics, 10)
        self._event_pub = self.create_publisher(PolicyEventMsg, topics.policy_events, qos.POLICY_EVENT)
        self.create_service(PinPolicy, "~/pin_policy", self._on_pin)
        self.create_service(Rollback, "~/rollback", self._on_rollback)
        self.create_service(PolicyOverride, "~/force_policy", partial(self._on_override, self.policies.force))
        self.create_service(PolicyOverride, "~/block_policy", partial(self._on_override, self.policies.block))
        self.create_service(Trigger, "~/clear_estop", self._on_clear_estop)
        self.create_service(SetBool, "~/set_exploration", self._on_set_exploration)
        reset_name = self._param("reset_service")
        self._reset_client = self.create_client(Trigger, reset_name) if reset_name else None
        self.create_timer(1.0, self._publish_diagnostics)
        self.create_timer(POLICY_EVENT_PERIOD_S, self._publish_policy_events)
        self.policies.start_validator(self._load_bundle)
        self.get_logger().info(f"configured for robot {cfg.robot_id}, session {session_id}, {1 / cfg.dt:.0f} Hz; "
                               f"policy versions in {state_file(state_dir, cfg.robot_id)}")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._running.set()
        self._activated_at = time.monotonic()
        if self._reset_client is not None:
            # A session's first episode starts from a reset too: a restarted node cannot know how the
            # last one left the robot (a fallen robot would hold on its tilt fault for good).
            self.controller.episodes_allowed = False
        self._thread = threading.Thread(target=self._control_loop, daemon=True, name="control-loop")
        self._thread.start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_loop()
        return super().on_deactivate(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_loop()
        return TransitionCallbackReturn.SUCCESS

    def stop(self) -> None:
        """Called by run_node once callbacks have stopped: end the loop, close the episode, say so."""
        self._stop_loop()
        if self.controller is None:
            return
        self.policies.close(timeout=1.0)
        last = self.controller.end_session()
        self._publish_policy_events()
        if last is not None:
            self._transition_pub.publish(transition_to_msg(last, self.get_clock().now().to_msg()))
        # The publisher's queue dies with this process: give the replay node a moment to receive the tail.
        session = f"{self.controller.seq} transitions in session {self.controller.session_id}"
        deadline = time.monotonic() + ACK_WAIT_S
        if self.controller.seq and not self._replay_seen:
            # A node started seconds ago may not be discovered yet: with no reader matched,
            # wait_for_all_acked returns at once and the transitions would be lost unannounced.
            while self._transition_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._transition_pub.get_subscription_count() == 0:
                self.get_logger().error(f"no replay node received the {session}: they are not stored "
                                        "(is replay_node running, on the same ROS domain and transitions topic?)")
                return
        if self.controller.seq and self._transition_pub.get_subscription_count() == 0:
            # Stopping together (Ctrl-C under ros2 launch): the replay node left first with what it had.
            self.get_logger().warning("the replay node stopped before this node: the last transitions may "
                                      "not be stored")
        elif not self._transition_pub.wait_for_all_acked(
                Duration(seconds=max(deadline - time.monotonic(), 0.0))):
            self.get_logger().warning(f"transitions not all acknowledged after {ACK_WAIT_S:.0f} s "
                                      "(the replay node is behind, or it is stopping too)")
        self.get_logger().info(f"published {session}")

    def _stop_loop(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    # -- the real-time loop ----------------------------------------------------------

    def _control_loop(self) -> None:
        if self._param("realtime_priority") > 0 and (refused := request_realtime(self._param("realtime_priority"))):
            self.get_logger().warning(refused)
        try:
            self.loop.run(self._tick, self._running.is_set, on_late=self._on_late)
        except Exception as exc:  # Controller.tick never raises: this is a fault of the node itself
            self.fatal_error = f"control loop died: {type(exc).__name__}: {exc}"
            self.get_logger().fatal(f"{self.fatal_error}; exiting so that a supervisor restarts the node")

    def _tick(self, now: float) -> None:
        out = self.controller.tick(self._read_sensors(), now)
        if out.joint_targets is not None:
            self._cmd_pub.publish(Float64MultiArray(data=[float(v) for v in out.joint_targets]))
        stamp = self.get_clock().now().to_msg()
        for t in out.transitions:
            self._transition_pub.publish(transition_to_msg(t, stamp))
        if out.fault != self._last_fault:
            fault = self.controller.current_fault
            text = f"holding: {fault.name}: {fault.detail}" if fault else "fault cleared; acting again"
            self.get_logger().warning(text, throttle_duration_sec=1.0)
            self._last_fault = out.fault
        if out.episode_ended or not self.controller.episodes_allowed:
            self._request_reset()

    def _on_late(self, lateness: float, previous: float) -> None:
        self.get_logger().warning(
            f"tick started {1e3 * lateness:.1f} ms late (period {1e3 * self.loop.period:.0f} ms, "
            f"previous tick took {1e3 * previous:.1f} ms)", throttle_duration_sec=1.0)

    def _read_sensors(self):
        latest = self._sensors.snapshot()
        if any(k not in latest for k in self._required):
            return None
        # The oldest required reading dates the whole observation: one dead sensor trips the watchdog.
        received = min(latest[k][1] for k in self._required)
        msgs = {k: msg for k, (msg, _) in latest.items()}
        return readings_from_msgs(msgs["joints"], msgs["imu"], msgs.get("odom"), msgs.get("contacts"),
                                  clock=self.get_clock().now().nanoseconds * 1e-9, received=received)

    def _request_reset(self) -> None:
        """Ask for a reset; the next episode starts once the service confirms it. A paced simulator
        answers "not yet" while the learner catches up: then ask again (one call at a time)."""
        now = time.monotonic()
        if self._reset_client is None or now < self._reset_retry_at:
            return
        if self._reset_call is not None:
            if now - self._reset_call[1] < RESET_TIMEOUT_S:
                return
            self.get_logger().warning(f"no answer from the reset service in {RESET_TIMEOUT_S:.0f} s; going on")
            self._reset_call = None
            self.controller.episodes_allowed = True
            return
        if not self._reset_client.service_is_ready():
            if now - self._activated_at < RESET_TIMEOUT_S:
                return  # just started: the service may not be discovered yet
            self.get_logger().warning("the reset service is not available; the next episode starts without a reset",
                                      throttle_duration_sec=5.0)
            self.controller.episodes_allowed = True
            return
        self.controller.episodes_allowed = False
        future = self._reset_client.call_async(Trigger.Request())
        self._reset_call = (future, now)
        future.add_done_callback(self._on_reset_done)

    def _on_reset_done(self, future) -> None:
        if self._reset_call is None or future is not self._reset_call[0]:
            return  # an answer to a call already given up
        try:
            response = future.result()
            done, why = response.success, response.message
        except Exception as exc:  # the service went away mid-call: do not wait for it forever
            done, why = True, f"reset call failed: {type(exc).__name__}: {exc}"
            self.get_logger().warning(why, throttle_duration_sec=5.0)
        if not done:
            self.get_logger().info(f"next episode waits: {why}", throttle_duration_sec=10.0)
            self._reset_retry_at = time.monotonic() + RESET_RETRY_S
        self.controller.episodes_allowed = done
        self._reset_call = None

    def _load_bundle(self, bundle, min_version: int) -> PolicyRuntime:
        return PolicyRuntime.load(
            bundle, expected_spec=self.config.policy_spec(), public_key=self._public_key,
            allow_unsigned=self._param("allow_unsigned"), max_bytes=self._param("max_bundle_bytes"),
            sample_observations=self.controller.recent_obs.snapshot(), min_version=min_version,
        )

    def _log(self, level: str, message: str) -> None:
        # One call site per severity: rclpy refuses a call site whose severity changes.
        if level == "error":
            self.get_logger().error(message)
        elif level == "warning":
            self.get_logger().warning(message)
        else:
            self.get_logger().info(message)

    # -- e-stop and services (thin: the controller and the policy manager decide) ------------

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            self.controller.safety.latch_estop("e-stop topic")
            self.get_logger().error("E-STOP latched: holding pose until ~/clear_estop is called")

    def _on_clear_estop(self, request, response):
        self.controller.safety.clear_estop()
        response.success, response.message = True, "e-stop cleared"
        self.get_logger().warning("e-stop cleared by service call")
        return response

    def _on_set_exploration(self, request, response):
        # Through the parameter, so that `ros2 param get explore` always says what runs.
        result = self.set_parameters([Parameter("explore", value=bool(request.data))])[0]
        response.success = result.successful
        response.message = f"exploration {'on' if request.data else 'off'}" if result.successful else result.reason
        return response

    def _on_pin(self, request, response):
        response.success, response.message = self.policies.pin(request.version)
        return response

    def _on_rollback(self, request, response):
        response.success, response.message = self.policies.rollback(request.version)
        return response

    def _on_override(self, decide, request, response):
        response.success, response.message = decide(request.version, request.reason)
        return response

    # -- policy events -----------------------------------------------------------------

    def _publish_policy_events(self) -> None:
        events = self.policies.take_events()
        self.policies.flush()  # a decision is written before it is announced
        for event in events:
            msg = PolicyEventMsg(robot_id=self.config.robot_id, version=event.version, event=event.event,
                                 reason=event.reason, values_json=event.values_json())
            msg.header.stamp = self.get_clock().now().to_msg()
            self._event_pub.publish(msg)

    # -- diagnostics -------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        self._replay_seen = self._replay_seen or self._transition_pub.get_subscription_count() > 0
        age = self.loop.tick_age(now)
        health = control_health(self.controller, self.loop, active=self._running.is_set(),
                                tick_age=age if age is not None else now - self._activated_at,
                                stall_timeout_s=self._param("stall_timeout_s"), fatal_error=self.fatal_error)
        status = diagnostic_status("control_node", self.config.robot_id,
                                   getattr(DiagnosticStatus, health.level), health.message, health.values)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args=None) -> None:
    # A thread waiting for the GIL (the control loop) gets it after 1 ms instead of 5 ms.
    sys.setswitchinterval(0.001)
    run_node(ControlNode, args)
