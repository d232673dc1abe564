"""Admission control for replay ingest: what a replay node refuses before ``ReplayStore.add``.

Anyone on the ROS graph can publish a Transition, and a buggy or hostile publisher must
not be able to spoil what is recorded. ``IngestGuard.check`` refuses, and counts under
its ``Refusal`` kind, a transition that

- names a robot this node does not record (``unknown_robot``);
- has an empty, over-long or unprintable session id (``bad_session_id``);
- has a seq, policy version or stamp out of range, NaN/inf or too large a reward or
  observation, an action outside the policy spec's bounds, wrong sizes, or is_terminal
  without is_last (``bad_seq``, ``bad_policy_version``, ``bad_stamp``, ``bad_reward``,
  ``bad_obs``, ``bad_action``, ``bad_flags``);
- jumps ahead of its session's next expected seq by more than ``seq_window``
  (``seq_ahead``). Such a transition changes nothing, so one forged seq near 2**63 cannot
  make the session's real transitions look like duplicates. After a long outage the real
  stream is legitimately far ahead: ``seq_resync_run`` consecutive seqs beyond the window
  show a live producer rather than one forged message, and the last of them is admitted
  (the store records the skipped seqs as a gap);
- would start a new session beyond the new-session budget (``session_rate``): a bucket
  of ``new_session_burst`` sessions, refilled at ``new_sessions_per_hour``, so a flood
  of forged session ids cannot make a folder each.

The guard only decides; the caller adds what it admits. Refusals are
``Refused`` errors (an ``InvalidTransitionError``, so a ``ValueError``) naming the kind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from dreamer_core.spec import PolicySpec

from .errors import InvalidTransitionError
from .records import FLOAT32_MAX, Transition, checked_integer, checked_real, checked_vector


class Refusal(StrEnum):
    """Why a transition was refused (the key of its counter)."""

    UNKNOWN_ROBOT = "unknown_robot"
    BAD_SESSION_ID = "bad_session_id"
    BAD_SEQ = "bad_seq"
    BAD_POLICY_VERSION = "bad_policy_version"
    BAD_STAMP = "bad_stamp"
    BAD_FLAGS = "bad_flags"
    BAD_REWARD = "bad_reward"
    BAD_OBS = "bad_obs"
    BAD_ACTION = "bad_action"
    SEQ_AHEAD = "seq_ahead"
    SESSION_RATE = "session_rate"


class Refused(InvalidTransitionError):
    """A transition the guard refused; ``kind`` says why."""

    def __init__(self, kind: Refusal, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


# Stamps are seconds on a ROS clock: builtin_interfaces/Time holds them in 32 bits.
MAX_STAMP_S = float(2**32)


@dataclass(frozen=True)
class AdmissionLimits:
    """What the guard admits (the replay node's parameters; defaults in docs/nodes.md)."""

    robot_ids: frozenset[str]
    obs_dim: int
    act_dim: int
    action_low: float = -1.0
    action_high: float = 1.0
    max_abs_obs: float = 1e4
    max_abs_reward: float = 1e4
    seq_window: int = 3000
    seq_resync_run: int = 500  # 0: never re-anchor a session beyond the window
    new_session_burst: int = 8
    new_sessions_per_hour: float = 60.0
    max_session_id_length: int = 128

    def __post_init__(self) -> None:
        if not self.robot_ids or not all(isinstance(r, str) and r for r in self.robot_ids):
            raise ValueError(f"robot_ids must name at least one robot, got {sorted(self.robot_ids)!r}")
        if not self.action_low < self.action_high:
            raise ValueError(f"action_low {self.action_low} must be below action_high {self.action_high}")
        for name in ("obs_dim", "act_dim", "seq_window", "max_session_id_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("seq_resync_run", "new_session_burst"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_abs_obs", "max_abs_reward", "new_sessions_per_hour"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def for_spec(cls, spec: PolicySpec, robot_ids: list[str] | None = None, **limits) -> AdmissionLimits:
        """Limits for a robot's policy spec: its sizes and action bounds, its robot_id unless
        ``robot_ids`` names others."""
        return cls(
            robot_ids=frozenset(robot_ids or [spec.robot_id]), obs_dim=spec.obs_dim, act_dim=spec.act_dim,
            action_low=spec.action_low, action_high=spec.action_high, **limits,
        )


@dataclass
class _Run:
    """Consecutive seqs beyond a session's window: a resumed producer, or a forgery."""

    next_seq: int
    length: int = 1


@dataclass
class IngestGuard:
    """Checks each transition before it is stored (see the module docstring).

    ``next_seq(robot_id, session_id)`` is the store's next expected seq of a session, None
    for a session it does not hold (``ReplayStore.next_seq``). ``refusals`` counts every
    kind (all keys present from the start); ``admitted`` counts what ``check`` let through.
    """

    limits: AdmissionLimits
    next_seq: Callable[[str, str], int | None]
    clock: Callable[[], float] = time.monotonic
    admitted: int = 0
    refusals: dict[str, int] = field(default_factory=lambda: {kind.value: 0 for kind in Refusal})

    def __post_init__(self) -> None:
        self._tokens = float(self.limits.new_session_burst)
        self._refilled = self.clock()
        self._runs: dict[tuple[str, str], _Run] = {}

    def check(self, t: Transition) -> Transition:
        """``t`` with its fields validated (obs/action as float32 arrays), or ``Refused``."""
        try:
            checked = self._checked(t)
        except Refused as exc:
            self.refusals[exc.kind.value] += 1
            raise
        self.admitted += 1
        return checked

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())

    def _checked(self, t: Transition) -> Transition:
        limits = self.limits
        if not isinstance(t.robot_id, str) or t.robot_id not in limits.robot_ids:
            known = sorted(limits.robot_ids)
            raise Refused(Refusal.UNKNOWN_ROBOT, f"robot_id {t.robot_id!r:.80} is not one of {known}")
        session = t.session_id
        length = limits.max_session_id_length
        if not (isinstance(session, str) and 0 < len(session) <= length and session.isprintable()):
            raise Refused(
                Refusal.BAD_SESSION_ID,
                f"session_id {session!r:.80} must be 1..{limits.max_session_id_length} printable characters",
            )
        seq = _field(Refusal.BAD_SEQ, checked_integer, t.seq, "seq", 63)
        version = _field(Refusal.BAD_POLICY_VERSION, checked_integer, t.policy_version, "policy_version", 32)
        stamp = _field(Refusal.BAD_STAMP, checked_real, t.stamp, "stamp", MAX_STAMP_S)
        if stamp < 0:
            raise Refused(Refusal.BAD_STAMP, f"stamp {stamp} is before the clock's epoch")
        flags = (t.is_first, t.is_last, t.is_terminal)
        if not all(isinstance(f, bool | np.bool_) for f in flags):
            raise Refused(Refusal.BAD_FLAGS, f"is_first/is_last/is_terminal must be booleans, got {flags!r}")
        if t.is_terminal and not t.is_last:
            raise Refused(Refusal.BAD_FLAGS, "is_terminal without is_last (a terminal step ends the episode)")
        max_reward = min(limits.max_abs_reward, FLOAT32_MAX)
        reward = _field(Refusal.BAD_REWARD, checked_real, t.reward, "reward", max_reward)
        obs = _field(Refusal.BAD_OBS, checked_vector, t.obs, limits.obs_dim, "obs")
        if float(np.abs(obs).max()) > limits.max_abs_obs:
            index = int(np.argmax(np.abs(obs)))
            raise Refused(Refusal.BAD_OBS, f"obs[{index}] = {obs[index]} exceeds max_abs_obs {limits.max_abs_obs:g}")
        action = _field(Refusal.BAD_ACTION, checked_vector, t.action, limits.act_dim, "action")
        low, high = np.float32(limits.action_low), np.float32(limits.action_high)
        outside = (action < low) | (action > high)
        if outside.any():
            index = int(np.argmax(outside))
            raise Refused(Refusal.BAD_ACTION, f"action[{index}] = {action[index]} is outside [{low}, {high}]")
        self._admit_seq(t.robot_id, session, seq)
        return replace(
            t, seq=seq, obs=obs, action=action, reward=reward, policy_version=version, stamp=stamp,
            is_first=bool(t.is_first), is_last=bool(t.is_last), is_terminal=bool(t.is_terminal),
        )

    def _admit_seq(self, robot_id: str, session_id: str, seq: int) -> None:
        """The stateful checks, last, so that a transition refused for its content costs nothing."""
        key = (robot_id, session_id)
        expected = self.next_seq(robot_id, session_id)
        if expected is None:
            self._take_session_token(session_id)
            return
        ahead = seq - expected
        if ahead <= self.limits.seq_window:
            return
        run = self._runs.get(key)
        run = _Run(seq + 1, run.length + 1) if run is not None and seq == run.next_seq else _Run(seq + 1)
        resync = self.limits.seq_resync_run
        if resync and run.length >= resync:
            self._runs.pop(key, None)
            return
        self._runs[key] = run
        raise Refused(
            Refusal.SEQ_AHEAD,
            f"seq {seq} of session {session_id!r} is {ahead} ahead of the next expected ({expected}); "
            f"the window is {self.limits.seq_window}",
        )

    def _take_session_token(self, session_id: str) -> None:
        now = self.clock()
        rate = self.limits.new_sessions_per_hour / 3600.0
        self._tokens = min(float(self.limits.new_session_burst), self._tokens + max(0.0, now - self._refilled) * rate)
        self._refilled = now
        if self._tokens < 1.0:
            wait = math.inf if rate == 0 else (1.0 - self._tokens) / rate
            raise Refused(
                Refusal.SESSION_RATE,
                f"new session {session_id!r:.80} refused: the new-session budget is spent (next in {wait:.0f} s)",
            )
        self._tokens -= 1.0


def _field(kind: Refusal, check: Callable, *args):
    """Run a records.py check, turning its InvalidTransitionError into a refusal of ``kind``."""
    try:
        return check(*args)
    except InvalidTransitionError as exc:
        raise Refused(kind, str(exc)) from None
