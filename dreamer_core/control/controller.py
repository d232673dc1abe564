"""One control tick: signals in, safe joint targets and a Transition out.

The control node calls `Controller.tick` from its real-time loop and only
translates ROS messages; all decisions live here so they are tested without ROS.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from dreamer_core.control.exploration import InitialPolicy
from dreamer_core.control.safety import SafetyMonitor
from dreamer_core.robots.action import ActionMapper
from dreamer_core.robots.observation import ObservationBuilder
from dreamer_core.robots.reward import RewardFunction
from dreamer_core.robots.signals import RobotSignals
from dreamer_core.storage import Transition


@dataclass
class TickOutput:
    """What one tick decided."""

    joint_targets: np.ndarray | None  # None only before the robot was ever measured
    transitions: list[Transition] = field(default_factory=list)
    mode: str = "policy"  # policy | initial | hold
    fault: str | None = None
    episode_ended: bool = False


class Controller:
    """Episode bookkeeping, policy stepping, safety and hot swap for one robot.

    `offer_policy` may be called from any thread (the node validates bundles in the
    background); the swap itself happens at the start of the next tick, so a tick
    never sees half a policy.
    """

    def __init__(self, config, *, session_id: str, initial_policy: InitialPolicy,
                 explore: bool = True, seed: int = 0):
        self.config = config
        self.robot_id = config.robot_id
        self.session_id = session_id
        self.builder = ObservationBuilder(config)
        self.mapper = ActionMapper(config)
        self.reward_fn = RewardFunction(config)
        self.safety = SafetyMonitor(config)
        self.initial_policy = initial_policy
        self.explore = explore
        self.max_steps = config.episode_steps
        self.act_dim = config.act_dim
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._pending = None
        self.policy = None  # a PolicyRuntime, or None for the initial policy
        self.swaps = 0
        self.last_swap_at: float | None = None  # the `now` of the tick that made the last swap
        self.seq = 0
        self.episodes = 0
        self.faults: dict[str, int] = {}
        self._in_episode = False
        self._episode_step = 0
        self._prev_action = np.zeros(self.act_dim, dtype=np.float32)
        self._prev_prev_action = np.zeros(self.act_dim, dtype=np.float32)
        self._last_obs: np.ndarray | None = None
        self._last_targets: np.ndarray | None = None
        self._held: np.ndarray | None = None  # frozen safe command while a fault lasts
        self._ramp_start: np.ndarray | None = None
        self._ramp_tick = 0

    @property
    def policy_version(self) -> int:
        return 0 if self.policy is None else int(self.policy.version)

    def offer_policy(self, runtime) -> None:
        """Queue a validated runtime; it becomes active at the next tick boundary."""
        with self._lock:
            self._pending = runtime

    def tick(self, signals: RobotSignals | None, now: float) -> TickOutput:
        self._apply_pending_swap(signals, now)
        fault = self.safety.fault(signals, now)
        if fault is not None:
            return self._hold(signals, fault)
        self._held = None
        if not self._in_episode:
            self._start_episode(signals)
        return self._act(signals)

    def end_session(self) -> Transition | None:
        """Close the running episode (is_last) when the node stops, so replay sees where it ended."""
        if not self._in_episode or self._last_obs is None:
            return None
        return self._end_episode(self._last_obs, 0.0, terminal=False, stamp=0.0)

    # -- internals -----------------------------------------------------------------

    def _apply_pending_swap(self, signals: RobotSignals | None, now: float) -> None:
        with self._lock:
            runtime, self._pending = self._pending, None
        if runtime is None:
            return
        self.policy = runtime
        self.policy.reset()
        self.swaps += 1
        self.last_swap_at = now
        self._begin_ramp(signals)

    def _begin_ramp(self, signals: RobotSignals | None) -> None:
        start = self.safety.hold_targets(signals)
        self._ramp_start = start if start is not None else self._last_targets
        self._ramp_tick = 0

    def _start_episode(self, signals: RobotSignals) -> None:
        self._in_episode = True
        self._episode_step = 0
        self._prev_action[:] = 0.0
        self._prev_prev_action[:] = 0.0
        self.initial_policy.reset()
        self.mapper.reset(np.asarray(signals.joint_pos, dtype=np.float64))
        if self.policy is not None:
            self.policy.reset()
        self._begin_ramp(signals)
        self.episodes += 1

    def _transition(self, obs, action, reward, *, first, last, terminal, stamp) -> Transition:
        t = Transition(
            robot_id=self.robot_id, session_id=self.session_id, seq=self.seq,
            obs=np.asarray(obs, dtype=np.float32), action=np.asarray(action, dtype=np.float32),
            reward=float(reward), is_first=first, is_last=last, is_terminal=terminal,
            policy_version=self.policy_version, stamp=stamp,
        )
        self.seq += 1
        return t

    def _end_episode(self, obs, reward, *, terminal: bool, stamp: float) -> Transition:
        # DreamerV3 convention: the last step carries the final observation; its action is unused.
        self._in_episode = False
        first = self._episode_step == 0
        return self._transition(obs, np.zeros(self.act_dim), reward, first=first, last=True,
                                terminal=terminal, stamp=stamp)

    def _hold(self, signals: RobotSignals | None, fault: str) -> TickOutput:
        self.faults[fault] = self.faults.get(fault, 0) + 1
        transitions = []
        if self._in_episode:
            if fault == "tilt":
                # A fall: the current observation is real and the episode is over for good.
                obs = self.builder.build(signals, self._prev_action)
                reward, _ = self.reward_fn(signals, self._prev_action, self._prev_prev_action)
                transitions.append(self._end_episode(obs, reward, terminal=True, stamp=signals.stamp))
            else:
                # Stale or bad sensors, e-stop: cut the episode at the last good observation.
                stamp = signals.stamp if signals is not None else 0.0
                transitions.append(self._end_episode(self._last_obs, 0.0, terminal=False, stamp=stamp))
        if self._held is None:
            # Freeze the pose once, when the fault begins: re-tracking the measured pose would let
            # the robot sag under gravity. Stale sensors: keep the last command we trust.
            fresh = None if fault == "stale_sensor" else self.safety.hold_targets(signals)
            self._held = fresh if fresh is not None else self._last_targets
        held = self._held
        self._last_targets = held
        return TickOutput(held, transitions, mode="hold", fault=fault, episode_ended=bool(transitions))

    def _act(self, signals: RobotSignals) -> TickOutput:
        first = self._episode_step == 0
        obs = self.builder.build(signals, self._prev_action)
        reward = 0.0
        if not first:
            reward, _ = self.reward_fn(signals, self._prev_action, self._prev_prev_action)
        self._last_obs = obs
        self._episode_step += 1
        if self._episode_step >= self.max_steps:
            t = self._end_episode(obs, reward, terminal=False, stamp=signals.stamp)
            held = self.safety.hold_targets(signals)
            self._last_targets = held
            return TickOutput(held, [t], mode="hold", episode_ended=True)
        if self.policy is not None:
            action = self.policy.step(obs, explore=self.explore, is_first=first, rng=self._rng)
            mode = "policy"
        else:
            action = self.initial_policy()
            mode = "initial"
        if not np.all(np.isfinite(action)):
            return self._hold(signals, "nonfinite_action")
        clip = self.config.action.clip
        action = np.clip(np.asarray(action, dtype=np.float32), -clip, clip)
        targets = self.safety.clip_targets(self.mapper(action), self._last_targets)
        targets = self._soft_start(targets)
        t = self._transition(obs, action, reward, first=first, last=False, terminal=False,
                             stamp=signals.stamp)
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
