"""sim_robot: the simulated A1 behind the topics a real driver has.

Subscribes joint position targets (std_msgs/Float64MultiArray, as a ros2_control
forward position controller does), steps MuJoCo in real time, and publishes
sensor_msgs/JointState, sensor_msgs/Imu, nav_msgs/Odometry and foot contacts.
Services: `~/reset` (std_srvs/Trigger) stands the robot up again, `~/pause`
(std_srvs/SetBool) freezes physics and sensors, as a dead driver would. Diagnostics
(once a second): the achieved loop rate and real-time factor, paused, resets.
With `paced`, a reset waits for the learner (dreamer_core.runners.pacing): the robot stands
still, still publishing, and the reset answers "not yet" until the learner keeps up.
With `travel_log`, each stretch between two resets (an episode) appends the base's forward travel
to that file (dreamer_core.report.travel_log) for the session report.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from dreamer_core.control.timing import FixedRateLoop
from dreamer_core.envs.a1_mujoco import A1MujocoEnv
from dreamer_core.report.travel_log import TravelLog
from dreamer_core.runners.pacing import EpisodePacing, LearnerProgress
from dreamer_ros import qos
from dreamer_ros.conversions import diagnostic_status, status_node
from dreamer_ros.params import SEED_RANGE, Param, declare_parameters, load_node_robot_config
from dreamer_ros.spin import run_node

# Fixed for the node's life (docs/nodes.md#sim_robot).
PARAMETERS = {
    "seed": Param(0, "simulator seed", range=SEED_RANGE),
    "randomize": Param(False, "domain randomisation (friction, added mass, action latency), a sample per reset"),
    "real_time_factor": Param(1.0, "simulated seconds per wall-clock second (the loop period is "
                                   "dt / real_time_factor)", range=(0.01, 100.0)),
    "paced": Param(False, "start each episode only when the learner keeps up with its train ratio (a reset "
                          "waits, the robot standing still)"),
    "paced_max_updates_owed": Param(0, "paced: the most updates the learner may still owe when an episode "
                                       "starts", range=(0, 1_000_000)),
    "travel_log": Param("", "file to append each episode's forward travel to (JSON lines; empty: not recorded)"),
}
# Below this share of the requested real-time factor the simulation reports WARN (the machine cannot keep up).
SLOW_SHARE = 0.9


class SimRobot(Node):
    def __init__(self):
        super().__init__("sim_robot")
        params = declare_parameters(self, PARAMETERS)
        self.config = load_node_robot_config(self)
        self.env = A1MujocoEnv(self.config, seed=params["seed"], randomize=params["randomize"])
        self._lock = threading.Lock()
        self._targets: np.ndarray | None = None
        self._paused = threading.Event()
        # Paced, between episodes: physics stands still while the sensors keep publishing (no watchdog fault).
        self._frozen = threading.Event()
        self.pacing = EpisodePacing(params["paced_max_updates_owed"]) if params["paced"] else None
        self._pacing_status = "learner caught up"
        self.travel = TravelLog(params["travel_log"]) if params["travel_log"] else None
        self._next_stretch(None)
        self.fatal_error: str | None = None  # set when the simulation loop dies; run_node then exits non-zero
        self.loop = FixedRateLoop(self.config.dt / params["real_time_factor"])
        topics = self.config.topics
        self._joint_pub = self.create_publisher(JointState, topics.joint_states, qos.SENSOR)
        self._imu_pub = self.create_publisher(Imu, topics.imu, qos.SENSOR)
        self._odom_pub = self.create_publisher(Odometry, topics.odometry, qos.SENSOR) if topics.odometry else None
        self._contact_pub = (self.create_publisher(Float64MultiArray, topics.foot_contacts, qos.SENSOR)
                             if topics.foot_contacts else None)
        self.create_subscription(Float64MultiArray, topics.command, self._on_command, qos.COMMAND)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(SetBool, "~/pause", self._on_pause)
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.diagnostics, 10)
        if self.pacing is not None:
            self.create_subscription(DiagnosticArray, topics.diagnostics, self._on_diagnostics, 10)
        self.resets = 0
        self.commands_ignored = 0
        self.steps = 0  # control periods simulated (not while paused)
        self._rate_from = (time.monotonic(), 0, 0)  # (time, loop ticks, steps) at the last diagnostics
        self.create_timer(1.0, self._publish_diagnostics)
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="sim-loop")
        self._thread.start()
        self.get_logger().info(
            f"simulating {self.config.robot_id}: {1 / self.env.physics_dt:.0f} Hz physics, "
            f"{self.config.control_rate_hz:.0f} Hz sensors"
        )

    def _on_command(self, msg: Float64MultiArray) -> None:
        targets = np.asarray(msg.data, dtype=np.float64)
        if targets.shape != (self.config.act_dim,) or not np.all(np.isfinite(targets)):
            self.get_logger().error(
                f"ignoring command with {targets.size} values (need {self.config.act_dim} finite)",
                throttle_duration_sec=1.0,
            )
            self.commands_ignored += 1
            return
        with self._lock:
            self._targets = targets

    def _on_reset(self, request, response):
        waiting = self.pacing is not None and self.pacing.waiting
        if not waiting:  # a repeated call during a paced wait does not reset again
            with self._lock:
                ended_at = self.env.base_position()
                self.env.reset_physics()
                self._targets = None
                self.resets += 1
            self._next_stretch(ended_at)
        response.success, response.message = True, "robot reset to the default standing pose"
        if self.pacing is not None:
            go, self._pacing_status = self.pacing.may_start(time.monotonic())
            with self._lock:  # _step checks it under the lock: no physics step once it is set
                if go:
                    self._frozen.clear()
                else:
                    self._frozen.set()
            if not go:
                response.success, response.message = False, f"reset; {self._pacing_status}"
        return response

    def _next_stretch(self, ended_at: np.ndarray | None) -> None:
        """Travel log: end the stretch that ended at position ``ended_at`` (None: none ran) and begin the next."""
        if self.travel is None:
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        if ended_at is not None:
            self.travel.finish(now, ended_at)
        with self._lock:
            position, quat = self.env.base_position(), self.env.read_signals().base_quat
        self.travel.begin(now, position, quat)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status_node(status) != "learner_node" or status.hardware_id != self.config.robot_id:
                continue
            try:
                progress = LearnerProgress.from_diagnostics(status.message, {kv.key: kv.value for kv in status.values},
                                                            time.monotonic())
            except ValueError as exc:
                self.get_logger().warning(f"paced: unreadable learner diagnostics: {exc}", throttle_duration_sec=5.0)
                continue
            if progress is not None:
                self.pacing.report(progress)

    def _on_pause(self, request, response):
        if request.data:
            self._paused.set()
        else:
            self._paused.clear()
        response.success, response.message = True, "paused" if request.data else "running"
        return response

    def _loop(self) -> None:
        try:
            self.loop.run(self._step, self._running.is_set)
        except Exception as exc:  # e.g. MuJoCo refusing an unstable state: a dead driver must not look alive
            self.fatal_error = f"simulation loop died: {type(exc).__name__}: {exc}"
            self.get_logger().fatal(self.fatal_error)

    def _step(self, now: float) -> None:
        if self._paused.is_set():
            return
        with self._lock:
            if not self._frozen.is_set():
                # New targets only: step_physics keeps the last ones (or the default pose) otherwise.
                targets, self._targets = self._targets, None
                self.env.step_physics(targets, self.config.substeps)
                self.steps += 1
            signals = self.env.read_signals()
            position = self.env.base_position()
            accel = self.env.imu_acceleration()
        self._publish(signals, position, accel)

    def _publish(self, signals, position, accel) -> None:
        stamp = self.get_clock().now().to_msg()
        joints = JointState(name=self.config.joint_names, position=signals.joint_pos.tolist(),
                            velocity=signals.joint_vel.tolist())
        joints.header.stamp = stamp
        self._joint_pub.publish(joints)
        imu = Imu()
        imu.header.stamp = stamp
        imu.header.frame_id = self.config.sim.base_body
        w, x, y, z = signals.base_quat
        imu.orientation.w, imu.orientation.x, imu.orientation.y, imu.orientation.z = w, x, y, z
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = signals.base_ang_vel
        imu.linear_acceleration.x, imu.linear_acceleration.y, imu.linear_acceleration.z = accel
        self._imu_pub.publish(imu)
        if self._odom_pub is not None:
            odom = Odometry()
            odom.header.stamp = stamp
            odom.header.frame_id = "odom"
            odom.child_frame_id = self.config.sim.base_body
            odom.pose.pose.position.x, odom.pose.pose.position.y, odom.pose.pose.position.z = position
            odom.pose.pose.orientation = imu.orientation
            lin = odom.twist.twist.linear
            lin.x, lin.y, lin.z = signals.base_lin_vel
            odom.twist.twist.angular = imu.angular_velocity
            self._odom_pub.publish(odom)
        if self._contact_pub is not None:
            self._contact_pub.publish(Float64MultiArray(data=signals.foot_contacts.tolist()))

    def _publish_diagnostics(self) -> None:
        with self._lock:  # steps and the paced freeze as of one moment (a report never says frozen at a stale count)
            steps, frozen = self.steps, self._frozen.is_set()
        now, ticks = time.monotonic(), self.loop.stats.ticks
        then, ticks_then, steps_then = self._rate_from
        self._rate_from = (now, ticks, steps)
        elapsed = max(now - then, 1e-9)
        factor = (steps - steps_then) * self.config.dt / elapsed  # simulated seconds per wall second
        wanted = self.get_parameter("real_time_factor").value
        paused = self._paused.is_set()
        if self.fatal_error:
            level, message = DiagnosticStatus.ERROR, self.fatal_error
        elif paused:
            level, message = DiagnosticStatus.WARN, "paused (no physics, no sensor data)"
        elif frozen:
            level, message = DiagnosticStatus.OK, f"paced: {self._pacing_status}"
        elif factor < SLOW_SHARE * wanted:
            level = DiagnosticStatus.WARN
            message = f"slower than requested: real-time factor {factor:.2f} of {wanted:g}"
        else:
            level, message = DiagnosticStatus.OK, "running"
        values = {
            "sim_rate_hz": f"{(ticks - ticks_then) / elapsed:.1f}", "target_rate_hz": f"{wanted / self.config.dt:.1f}",
            "real_time_factor": f"{factor:.3f}", "real_time_factor_target": f"{wanted:g}", "paused": paused,
            "resets": self.resets, "ticks": ticks, "missed_deadlines": self.loop.stats.missed_deadlines,
            "commands_ignored": self.commands_ignored, "steps": steps, "paced": self.pacing is not None,
            "paced_waiting": frozen, "paced_waited_s": f"{self.pacing.waited_s:.1f}" if self.pacing else "0.0",
        }
        status = diagnostic_status("sim_robot", self.config.robot_id, level, message, values)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)

    def stop(self) -> None:
        self._running.clear()
        self._thread.join(timeout=2.0)
        if self.travel is not None:
            with self._lock:
                position = self.env.base_position()
            self.travel.finish(self.get_clock().now().nanoseconds * 1e-9, position)


def main(args=None) -> None:
    run_node(SimRobot, args)
