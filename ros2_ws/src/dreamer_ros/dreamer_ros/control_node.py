"""control_node: the onboard lifecycle node that runs the policy at control rate.

Thin by design: it gathers the newest sensor messages, calls
`dreamer_core.control.Controller.tick` from a dedicated real-time thread, and
publishes the joint command and the Transition. Policy bundles are validated in a
background thread and handed to the controller, which swaps between two ticks.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from dreamer_msgs.msg import PolicyBundle as PolicyBundleMsg
from dreamer_msgs.msg import Transition as TransitionMsg
from dreamer_msgs.srv import PinPolicy
from nav_msgs.msg import Odometry
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from dreamer_core.control import Controller, InitialPolicy, TickStats
from dreamer_core.deploy import BundleRejected, PolicyRuntime, load_public_key
from dreamer_ros import qos
from dreamer_ros.conversions import (
    JointOrder,
    bundle_from_msg,
    diagnostic_status,
    signals_from_msgs,
    transition_to_msg,
)
from dreamer_ros.params import load_node_robot_config
from dreamer_ros.spin import run_node

POLICY_HISTORY = 5


class SensorCache:
    """Newest message per sensor topic with its receive time (monotonic)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.latest: dict[str, tuple[object, float]] = {}

    def put(self, key: str, msg) -> None:
        with self._lock:
            self.latest[key] = (msg, time.monotonic())

    def snapshot(self) -> dict[str, tuple[object, float]]:
        with self._lock:
            return dict(self.latest)


class ControlNode(LifecycleNode):
    def __init__(self):
        super().__init__("control_node")
        self.declare_parameter("autostart", True)
        self.declare_parameter("explore", True)
        self.declare_parameter("initial_policy", "random")
        self.declare_parameter("initial_policy_amplitude", 0.3)
        self.declare_parameter("public_key", "")
        self.declare_parameter("allow_unsigned", False)
        self.declare_parameter("max_bundle_bytes", 64 * 2**20)
        self.declare_parameter("reset_service", "")
        self.declare_parameter("seed", 0)
        self.declare_parameter("realtime_priority", 0)
        self.config = load_node_robot_config(self)
        if self.get_parameter("realtime_priority").value > 0:
            # Threads started from here on (executor, validator) inherit this: a GIL holder that
            # unrelated load preempts would otherwise stall the real-time control thread.
            try:
                os.setpriority(os.PRIO_PROCESS, 0, -10)
            except OSError as exc:
                self.get_logger().warning(f"could not raise the node's priority ({exc})")
        self.controller: Controller | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        # Latest wins: a bundle arriving while another is validated replaces any waiting one.
        self._waiting_bundle = None
        self._bundle_ready = threading.Condition()
        self._history: dict[int, object] = {}
        self._pinned: int | None = None
        self._last_rejection = ""
        self._recent_obs: deque[np.ndarray] = deque(maxlen=32)
        self._sensors = SensorCache()
        self._reset_pending = False
        self._configure_error = ""
        if self.get_parameter("autostart").value:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise SystemExit(f"control_node: configure failed: {self._configure_error}")
            self.trigger_activate()

    # -- lifecycle -----------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except (OSError, ValueError) as exc:  # a missing key file, a bad parameter value
            self._configure_error = str(exc)
            self.get_logger().fatal(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        cfg = self.config
        topics = cfg.topics
        self.stats = TickStats(cfg.dt)
        self._order = JointOrder(cfg.joint_names)
        session_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.controller = Controller(
            cfg, session_id=session_id,
            initial_policy=InitialPolicy(
                cfg.act_dim, mode=self.get_parameter("initial_policy").value,
                amplitude=self.get_parameter("initial_policy_amplitude").value,
                seed=self.get_parameter("seed").value,
            ),
            explore=self.get_parameter("explore").value, seed=self.get_parameter("seed").value,
        )
        key_path = self.get_parameter("public_key").value
        self._public_key = load_public_key(key_path) if key_path else None
        self._allow_unsigned = self.get_parameter("allow_unsigned").value
        if self._allow_unsigned:
            self.get_logger().warning(
                "DEVELOPMENT MODE: allow_unsigned=true, this robot accepts UNSIGNED policy bundles"
            )
        elif self._public_key is None:
            self.get_logger().warning("no public_key set: every policy bundle will be refused")
        self.create_subscription(JointState, topics.joint_states, lambda m: self._sensors.put("joints", m),
                                 qos.SENSOR)
        self.create_subscription(Imu, topics.imu, lambda m: self._sensors.put("imu", m), qos.SENSOR)
        if topics.odometry:
            self.create_subscription(Odometry, topics.odometry, lambda m: self._sensors.put("odom", m),
                                     qos.SENSOR)
        if topics.foot_contacts:
            self.create_subscription(Float64MultiArray, topics.foot_contacts,
                                     lambda m: self._sensors.put("contacts", m), qos.SENSOR)
        self.create_subscription(Bool, topics.estop, self._on_estop, qos.ESTOP)
        self.create_subscription(PolicyBundleMsg, topics.policy_bundles, self._on_bundle, qos.POLICY_BUNDLE)
        self._cmd_pub = self.create_publisher(Float64MultiArray, topics.command, qos.COMMAND)
        self._transition_pub = self.create_publisher(TransitionMsg, topics.transitions, qos.TRANSITION)
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.diagnostics, 10)
        self.create_service(PinPolicy, "~/pin_policy", self._on_pin)
        self.create_service(Trigger, "~/rollback", self._on_rollback)
        self.create_service(Trigger, "~/clear_estop", self._on_clear_estop)
        self.create_service(SetBool, "~/set_exploration", self._on_set_exploration)
        reset_name = self.get_parameter("reset_service").value
        self._reset_client = self.create_client(Trigger, reset_name) if reset_name else None
        self.create_timer(1.0, self._publish_diagnostics)
        threading.Thread(target=self._validate_bundles, daemon=True, name="bundle-validator").start()
        self.get_logger().info(f"configured for robot {cfg.robot_id}, session {session_id}, {1 / cfg.dt:.0f} Hz")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._running.set()
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
        self._stop_loop()
        if self.controller is None:
            return
        last = self.controller.end_session()
        if last is not None:
            self._transition_pub.publish(transition_to_msg(last, self.get_clock().now().to_msg()))
        self.get_logger().info(
            f"published {self.controller.seq} transitions in session {self.controller.session_id}"
        )

    def _stop_loop(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    # -- the real-time loop ----------------------------------------------------------

    def _raise_priority(self) -> None:
        """SCHED_FIFO for the control thread (Linux, needs CAP_SYS_NICE); 0 = leave scheduling alone."""
        priority = self.get_parameter("realtime_priority").value
        if priority <= 0:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except (OSError, AttributeError) as exc:
            self.get_logger().warning(f"realtime_priority {priority} not granted ({exc}); running best effort")

    def _control_loop(self) -> None:
        self._raise_priority()
        period = self.config.dt
        scheduled = time.monotonic()
        self._last_tick_s = 0.0
        while self._running.is_set():
            scheduled += period
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            started = time.monotonic()
            out = self.controller.tick(self._read_signals(), started)
            if out.joint_targets is not None:
                self._cmd_pub.publish(Float64MultiArray(data=[float(v) for v in out.joint_targets]))
            stamp = self.get_clock().now().to_msg()
            for t in out.transitions:
                self._transition_pub.publish(transition_to_msg(t, stamp))
                self._recent_obs.append(t.obs)
            if out.episode_ended:
                self._request_reset()
            finished = time.monotonic()
            self.stats.record(scheduled, started, finished)
            if started - scheduled > period:
                self.get_logger().warning(
                    f"tick started {1e3 * (started - scheduled):.1f} ms late (period {1e3 * period:.0f} ms, "
                    f"previous tick took {1e3 * self._last_tick_s:.1f} ms)",
                    throttle_duration_sec=1.0,
                )
                scheduled = started  # never burst to catch up on missed ticks
            self._last_tick_s = finished - started

    def _read_signals(self):
        latest = self._sensors.snapshot()
        needed = ["joints", "imu"]
        needed += ["odom"] if self.config.topics.odometry else []
        needed += ["contacts"] if self.config.topics.foot_contacts else []
        if any(k not in latest for k in needed):
            return None
        # The oldest required reading dates the whole observation: one dead sensor trips the watchdog.
        stamp = min(latest[k][1] for k in needed)
        contacts = latest["contacts"][0].data if "contacts" in latest else None
        odom = latest["odom"][0] if "odom" in latest else None
        try:
            return signals_from_msgs(self._order, latest["joints"][0], latest["imu"][0], odom, contacts, stamp)
        except ValueError as exc:
            self.get_logger().error(f"bad sensor message: {exc}", throttle_duration_sec=1.0)
            return None

    def _request_reset(self) -> None:
        if self._reset_client is None or self._reset_pending:
            return
        if not self._reset_client.service_is_ready():
            self.get_logger().warning("episode ended but the reset service is not available",
                                      throttle_duration_sec=5.0)
            return
        self._reset_pending = True
        future = self._reset_client.call_async(Trigger.Request())
        future.add_done_callback(lambda _: setattr(self, "_reset_pending", False))

    # -- e-stop and services -----------------------------------------------------------

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
        self.controller.explore = bool(request.data)
        response.success, response.message = True, f"exploration {'on' if request.data else 'off'}"
        return response

    def _on_pin(self, request, response):
        if request.version == 0:
            self._pinned = None
            if self._history:
                newest = max(self._history)
                self.controller.offer_policy(self._history[newest])
                response.message = f"unpinned: following the newest valid policy (v{newest} now)"
            else:
                response.message = "unpinned: no validated policy held yet"
            response.success = True
            return response
        runtime = self._history.get(request.version)
        if runtime is None:
            response.success = False
            response.message = f"version {request.version} not held; available: {sorted(self._history)}"
            return response
        self._pinned = request.version
        self.controller.offer_policy(runtime)
        response.success, response.message = True, f"pinned to policy version {request.version}"
        return response

    def _on_rollback(self, request, response):
        older = [v for v in self._history if v < self.controller.policy_version]
        if not older:
            response.success, response.message = False, "no older validated policy to roll back to"
            return response
        target = max(older)
        self._pinned = target
        self.controller.offer_policy(self._history[target])
        response.success, response.message = True, f"rolled back to policy version {target} (pinned)"
        return response

    # -- policy bundles ------------------------------------------------------------------

    def _on_bundle(self, msg: PolicyBundleMsg) -> None:
        with self._bundle_ready:
            if self._waiting_bundle is not None:
                self.get_logger().info(f"bundle v{self._waiting_bundle.version} superseded by v{msg.version}")
            self._waiting_bundle = bundle_from_msg(msg)
            self._bundle_ready.notify()

    def _validate_bundles(self) -> None:
        while True:
            with self._bundle_ready:
                while self._waiting_bundle is None:
                    self._bundle_ready.wait()
                bundle, self._waiting_bundle = self._waiting_bundle, None
            if bundle.version <= max(self._history, default=0):
                self.get_logger().info(f"ignoring bundle v{bundle.version}: not newer than held versions")
                continue
            samples = np.stack(self._recent_obs) if self._recent_obs else None
            try:
                runtime = PolicyRuntime.load(
                    bundle, expected_spec=self.config.policy_spec(), public_key=self._public_key,
                    allow_unsigned=self._allow_unsigned,
                    max_bytes=self.get_parameter("max_bundle_bytes").value, sample_observations=samples,
                )
            except BundleRejected as exc:
                self._last_rejection = f"v{bundle.version}: {exc.reason}"
                self.get_logger().error(f"policy bundle v{bundle.version} refused: {exc}")
                continue
            self._history[runtime.version] = runtime
            for old in sorted(self._history)[:-POLICY_HISTORY]:
                del self._history[old]
            if self._pinned is None:
                self.controller.offer_policy(runtime)
                self.get_logger().info(f"policy v{runtime.version} validated; swapping at the next tick")
            else:
                self.get_logger().info(f"policy v{runtime.version} validated; held (pinned to v{self._pinned})")

    # -- diagnostics -------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        c = self.controller
        s = self.stats.summary()
        fault = c.safety.fault(self._read_signals(), time.monotonic())
        level = DiagnosticStatus.OK if fault is None else DiagnosticStatus.WARN
        if c.safety.estop_reason is not None:
            level = DiagnosticStatus.ERROR
        values = {
            "policy_version": c.policy_version, "swaps": c.swaps, "pinned": self._pinned or 0,
            # CLOCK_MONOTONIC is shared by all processes of a host: benchmarks time swaps with it.
            "last_swap_monotonic": c.last_swap_at if c.last_swap_at is not None else "",
            "watchdog": fault or "ok", "estop_latched": c.safety.estop_reason is not None,
            "transitions_published": c.seq, "session_id": c.session_id, "episodes": c.episodes,
            "explore": c.explore, "last_rejection": self._last_rejection,
            "faults": ";".join(f"{k}={v}" for k, v in sorted(c.faults.items())),
            **{k: f"{v:.3f}" for k, v in s.items()},
        }
        status = diagnostic_status(f"control_node: {self.config.robot_id}", self.config.robot_id, level,
                                   fault or "running", values)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args=None) -> None:
    # A thread waiting for the GIL (the control loop) gets it after 1 ms instead of 5 ms.
    sys.setswitchinterval(0.001)
    run_node(ControlNode, args)
