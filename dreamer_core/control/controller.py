"""One control tick: sensor readings in, safe joint targets and a Transition out.

The control node calls `Controller.tick` from its real-time loop and only
translates ROS messages; all decisions live here so they are tested without ROS.
A tick never raises: a malformed or implausible reading, or an exception in any
stage, is a named fault (faults.py) and the safe command.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from dreamer_core.control.canary import FinishedEpisode
from dreamer_core.control.exploration import InitialPolicy
from dreamer_core.control.faults import Fault, FaultCounter, SensorFault
from dreamer_core.control.observation_ring import ObservationRing
from dreamer_core.control.policy_manager import PolicyManager
from dreamer_core.control.safety import SafetyMonitor
from dreamer_core.control.sensors import SensorReadings, SignalAssembler
from dreamer_core.robots.action import ActionMapper
from dreamer_core.robots.observation import ObservationBuilder
from dreamer_core.robots.reward import RewardFunction
from dreamer_core.robots.signals import RobotSignals, without_yaw, yaw
from dreamer_core.storage import Transition

# Faults after which the measured pose is trusted and held; after any other the last command is.
HOLD_MEASURED_POSE = frozenset({"estop", "tilt", "nonfinite_action", "action_shape"})
# Faults that end an episode because of what the policy did: the episode measures the policy (canary.py).
POLICY_FAULTS = frozenset({"nonfinite_action", "action_shape"})
# Observations the bundle validator runs a new policy on.
RECENT_OBSERVATIONS = 32


@dataclass
class TickOutput:
    """What one tick decided."""

    joint_targets: np.ndarray | None  # None only before the robot was ever plausibly measured
    transitions: list[Transition] = field(default_factory=list)
    mode: str = "policy"  # policy | initial | hold | wait (between episodes, for a reset)
    fault: str | None = None
    episode_ended: bool = False


class Controller:
    """Episode bookkeeping, policy stepping, safety and hot swap for one robot.

    Which policy runs is the :class:`PolicyManager`'s to say (any thread may change
    it); the controller takes a change at the start of a tick, so a tick never sees
    half a policy. A change ends the running episode (is_last, not terminal), so each
    episode runs one version and its return, reported to the manager, is that version's.
    """

    def __init__(self, config, *, session_id: str, initial_policy: InitialPolicy,
                 explore: bool = True, seed: int = 0, policies: PolicyManager | None = None):
        self.config = config
        self.robot_id = config.robot_id
        self.session_id = session_id
        self.sensors = SignalAssembler(config.joint_names, len(config.feet),
                                       config.safety.sensor_bounds.max_stamp_lead_s)
        self.builder = ObservationBuilder(config)
        self.mapper = ActionMapper(config)
        self.reward_fn = RewardFunction(config)
        self.safety = SafetyMonitor(config)
        self.policies = policies if policies is not None else PolicyManager(config.robot_id)
        self.recent_obs = ObservationRing(RECENT_OBSERVATIONS, config.obs_dim)
        self.faults = FaultCounter()
        self.initial_policy = initial_policy
        self.explore = explore
        self.max_steps = config.episode_steps
        self.act_dim = config.act_dim
        self._rng = np.random.default_rng(seed)
        self.policy = None  # a PolicyRuntime, or None for the initial policy
        self.swaps = 0
        self.ticks_without_command = 0  # before the robot was ever plausibly measured, or a bug
        self.last_swap_at: float | None = None  # the `now` of the tick that made the last swap
        self.last_exception = ""  # "<fault>: <type>: <message>" of the newest exception caught
        self.current_fault: Fault | None = None  # the fault of the newest tick (read by diagnostics)
        self.seq = 0
        self.episodes = 0
        # False while the robot is being reset between episodes (the node's reset service has not
        # confirmed yet): no new episode starts, so none begins on the pose before the reset.
        self.episodes_allowed = True
        self._stage = "sensors"
        self._episode_step = 0  # transitions emitted in the running episode (0: none running)
        self._episode_return = 0.0  # of the rows emitted in the running episode
        self._episode_rows = 0
        self._prev_action = np.zeros(self.act_dim, dtype=np.float32)
        self._prev_prev_action = np.zeros(self.act_dim, dtype=np.float32)
        self._yaw_origin = 0.0  # the base's heading at the episode's first tick
        self._last_obs: np.ndarray | None = None  # of the newest transition, with its stamp
        self._last_stamp = 0.0
        self._last_targets: np.ndarray | None = None
        self._last_pose: np.ndarray | None = None  # newest plausible measured pose (within command limits)
        self._held: np.ndarray | None = None  # frozen safe command while a fault lasts
        self._ramp_start: np.ndarray | None = None
        self._ramp_tick = 0

    @property
    def exploration(self) -> str:
        """What every version explores with, in words (diagnostics, the session report): with explore
        on, a canary and its baseline ran under the same noise."""
        noise = self.initial_policy.describe()
        return f"{noise} around every version's mean" if self.explore else f"mean actions (v0: {noise})"

    @property
    def policy_version(self) -> int:
        return 0 if self.policy is None else int(self.policy.version)

    def tick(self, inputs: SensorReadings | RobotSignals | None, now: float) -> TickOutput:
        """One control tick at monotonic time ``now``; never raises.

        ``inputs`` are the node's raw readings (checked here), signals from the simulator,
        or None when a required topic has not published yet.
        """
        self._stage = "sensors"
        try:
            out = self._tick(inputs, now)
        except Exception as exc:
            out = self._on_exception(exc)
        self.ticks_without_command += out.joint_targets is None
        return out

    def end_session(self) -> Transition | None:
        """Close the running episode (is_last) when the node stops, so replay sees where it ended."""
        if self._episode_step == 0:
            return None
        return self._end_episode(self._last_obs, 0.0, terminal=False, stamp=self._last_stamp, ending="stop")

    # -- internals -----------------------------------------------------------------

    def _tick(self, inputs, now: float) -> TickOutput:
        signals, fault = self._check(inputs, now)
        self._stage = "swap"
        switch = self.policies.take_switch()
        ended = []
        if switch is not None:
            try:
                if self._episode_step > 0:
                    # The old version's episode ends on this tick's real observation (at a fault as a fault would).
                    ended = self._end_on_fault(signals, fault) if fault is not None else [self._end_for_swap(signals)]
            finally:  # the manager already runs the new version: so must the controller, whatever happened
                self._swap(switch, signals, now)
        if fault is not None:
            return self._hold(signals, fault, ended)
        self._held = None
        self.current_fault = None
        if ended:
            # As at a time limit: hold for this tick; the new version starts a fresh episode on the next.
            self._last_targets = self.safety.hold_targets(signals)
            return TickOutput(self._last_targets, ended, mode="hold", episode_ended=True)
        if self._episode_step == 0:
            if not self.episodes_allowed:
                self._last_targets = self.safety.hold_targets(signals)
                return TickOutput(self._last_targets, mode="wait")
            self._start_episode(signals)
        return self._act(signals)

    def _check(self, inputs, now: float) -> tuple[RobotSignals | None, Fault | None]:
        """The signals of this tick and the first fault: e-stop, malformed, stale, implausible, tilt."""
        signals, malformed = inputs, None
        if isinstance(inputs, SensorReadings):
            try:
                signals = self.sensors.assemble(inputs)
            except SensorFault as exc:
                signals, malformed = None, exc.fault
        self._stage = "safety"
        if self.safety.estop_reason is not None:
            return signals, Fault("estop", self.safety.estop_reason)
        if malformed is not None:
            return None, malformed
        fault = self.safety.fault(signals, now)
        if fault is None or fault.name == "tilt":
            self._last_pose = self.safety.hold_targets(signals)
        return signals, fault

    def _swap(self, switch, signals: RobotSignals | None, now: float) -> None:
        self.policy = switch.runtime
        if self.policy is not None:
            self.policy.reset()
        self.swaps += 1
        self.last_swap_at = now
        self._begin_ramp(signals)

    def _begin_ramp(self, signals: RobotSignals | None) -> None:
        start = self.safety.hold_targets(signals)
        self._ramp_start = start if start is not None else self._last_targets
        self._ramp_tick = 0

    def _start_episode(self, signals: RobotSignals) -> None:
        self._yaw_origin = yaw(signals.base_quat)
        self._prev_action[:] = 0.0
        self._prev_prev_action[:] = 0.0
        self.initial_policy.reset()
        self.mapper.reset(np.asarray(signals.joint_pos, dtype=np.float64))
        if self.policy is not None:
            self.policy.reset()
        self._begin_ramp(signals)

    def _observe(self, signals: RobotSignals, *, first: bool = False) -> tuple[np.ndarray, float]:
        """This tick's observation and the reward of arriving at it (0 for an episode's first row)."""
        self._stage = "observation"
        # Observation and reward see the base in the episode's frame: heading 0 where the episode began.
        signals = replace(signals, base_quat=without_yaw(signals.base_quat, self._yaw_origin))
        obs = self.builder.build(signals, self._prev_action, self.mapper.phase)
        self._stage = "reward"
        reward = 0.0 if first else self.reward_fn(signals, self._prev_action, self._prev_prev_action)[0]
        return obs, reward

    def _transition(self, obs, action, reward, *, first, last, terminal, stamp) -> Transition:
        if first:
            self._episode_return, self._episode_rows = 0.0, 0
        self._episode_return += float(reward)
        self._episode_rows += 1
        t = Transition(
            robot_id=self.robot_id, session_id=self.session_id, seq=self.seq,
            obs=np.asarray(obs, dtype=np.float32), action=np.asarray(action, dtype=np.float32),
            reward=float(reward), is_first=first, is_last=last, is_terminal=terminal,
            policy_version=self.policy_version, stamp=stamp,
        )
        self.seq += 1
        return t

    def _end_episode(self, obs, reward, *, terminal: bool, stamp: float, ending: str,
                     first: bool = False) -> Transition:
        # DreamerV3 convention: the last step carries the final observation; its action is unused.
        self._episode_step = 0
        t = self._transition(obs, np.zeros(self.act_dim), reward, first=first, last=True,
                             terminal=terminal, stamp=stamp)
        self.policies.record_episode(FinishedEpisode(t.policy_version, self._episode_return, self._episode_rows,
                                                     ending))
        return t

    def _end_for_swap(self, signals: RobotSignals) -> Transition:
        obs, reward = self._observe(signals)
        return self._end_episode(obs, reward, terminal=False, stamp=signals.stamp, ending="swap")

    def _end_on_fault(self, signals: RobotSignals | None, fault: Fault) -> list[Transition]:
        """The last row of the running episode at ``fault`` (none when no episode runs)."""
        if self._episode_step == 0:
            return []
        if fault.name == "tilt":
            # A fall: the current observation is real and the episode is over for good.
            obs, reward = self._observe(signals)
            return [self._end_episode(obs, reward, terminal=True, stamp=signals.stamp, ending="fall")]
        # Bad or stale sensors, e-stop, an exception, a bad action: cut the episode at the last good observation.
        ending = "policy_fault" if fault.name in POLICY_FAULTS else "fault"
        return [self._end_episode(self._last_obs, 0.0, terminal=False, stamp=self._last_stamp, ending=ending)]

    def _hold(self, signals: RobotSignals | None, fault: Fault, ended: list[Transition] | None = None) -> TickOutput:
        self.current_fault = fault
        self.faults.count(fault)
        transitions = [*(ended or []), *self._end_on_fault(signals, fault)]
        if self._held is None:
            # Freeze the pose once, when the fault begins: re-tracking the measured pose would let
            # the robot sag under gravity. Untrusted sensors: keep the last command we sent.
            fresh = self.safety.hold_targets(signals) if fault.name in HOLD_MEASURED_POSE else None
            self._held = next((p for p in (fresh, self._last_targets, self._last_pose) if p is not None), None)
        self._last_targets = self._held
        return TickOutput(self._held, transitions, mode="hold", fault=fault.name,
                          episode_ended=bool(transitions))

    def _on_exception(self, exc: Exception) -> TickOutput:
        fault = Fault(f"tick_exception:{self._stage}", f"{type(exc).__name__}: {exc}")
        self.last_exception = f"{fault.name}: {fault.detail}"
        self.current_fault = fault
        try:
            return self._hold(None, fault)
        except Exception:
            # Last resort (a bug in the hold path itself): still send the safe command.
            held = self._held if self._held is not None else self._last_targets
            return TickOutput(held, [], mode="hold", fault=fault.name)

    def _act(self, signals: RobotSignals) -> TickOutput:
        first = self._episode_step == 0
        obs, reward = self._observe(signals, first=first)
        if self._episode_step + 1 >= self.max_steps:
            self.episodes += first
            t = self._end_episode(obs, reward, terminal=False, stamp=signals.stamp, ending="time_limit", first=first)
            self._last_targets = self.safety.hold_targets(signals)
            return TickOutput(self._last_targets, [t], mode="hold", episode_ended=True)
        self._stage = "policy"
        if self.policy is not None:
            # The robot explores with its own noise, the initial policy's, around every version's mean
            # (never with the actor's training std): a candidate and its baseline explore alike.
            action = self.policy.step(obs, explore=False, is_first=first, rng=self._rng)
            if self.explore:
                action = action + self.initial_policy()
            mode = "policy"
        else:
            action = self.initial_policy()
            mode = "initial"
        with np.errstate(over="ignore"):  # a value beyond float32 becomes inf and is caught below
            action = np.asarray(action, dtype=np.float32)
        if action.shape != (self.act_dim,):
            return self._hold(signals, Fault("action_shape", f"policy returned shape {action.shape}"))
        if not np.isfinite(action).all():
            return self._hold(signals, Fault("nonfinite_action", f"policy returned {action.tolist()}"))
        self._stage = "mapping"
        targets = self._soft_start(self.safety.clip_targets(self.mapper(action), self._last_targets))
        # Replay, the next observation and the policy's filter get the action the motors were sent
        # (after the low-pass, rate limit and soft start), never the one the policy asked for.
        action = self.mapper.executed(targets)
        if self.policy is not None:
            self.policy.executed(action)
        # Commit only now: a stage that raised above left the episode as it was.
        t = self._transition(obs, action, reward, first=first, last=False, terminal=False, stamp=signals.stamp)
        self.episodes += first
        self._episode_step += 1
        self._last_obs, self._last_stamp = obs, t.stamp
        self.recent_obs.add(obs)
        self._prev_prev_action = self._prev_action
        self._prev_action = action
        self._last_targets = targets
        return TickOutput(targets, [t], mode=mode)

    def _soft_start(self, targets: np.ndarray) -> np.ndarray:
        ramp = self.safety.limits.soft_start_ticks
        if self._ramp_start is None or self._ramp_tick >= ramp:
            return targets
        self._ramp_tick += 1
        alpha = self._ramp_tick / ramp
        return alpha * targets + (1.0 - alpha) * self._ramp_start
