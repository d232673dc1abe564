"""Paced simulation: the simulated robot starts its next episode only when the learner keeps up.

On a CPU the learner makes far fewer updates per collected step than the configured train ratio
asks for, so a curve of return against robot time shows a slow learner, not the algorithm. A
paced simulator waits *between episodes* until the learner's reported ``updates_owed`` (what the
train ratio still allows for the data stored, :class:`~dreamer_core.runners.train_ratio.TrainRatio`)
is at most ``max_updates_owed``. Pausing only at episode boundaries keeps every episode a
real-time one for the control node (no frozen sensors inside an episode) and keeps the wait out
of robot time (no transitions are recorded while the robot waits).

The learner reports on its diagnostics (``learner_node``: ``state``, ``updates_owed``); a report
counts for a wait only if it arrived after the wait began, so a report older than the episode
that just ended never releases the robot. While the learner waits for its first ``min_steps``
(``state`` is not ``training``) the robot runs freely: that data has no updates to wait for.
"""

from __future__ import annotations

from dataclasses import dataclass

# learner_node's diagnostics messages: before its first iteration, while it trains (else it waits for data).
STARTING = "starting"
TRAINING = "training"


@dataclass(frozen=True)
class LearnerProgress:
    """One progress report of the learner, with the (monotonic) time it was received."""

    training: bool
    updates_owed: int
    received: float

    @classmethod
    def from_diagnostics(cls, message: str, values: dict[str, str], received: float) -> LearnerProgress | None:
        """From learner_node's diagnostic status (message = its state); None while the learner is still
        starting (no progress yet: the robot keeps waiting); ValueError if it lacks ``updates_owed``."""
        if message == STARTING:
            return None
        if "updates_owed" not in values:
            raise ValueError("learner diagnostics without updates_owed")
        return cls(training=message == TRAINING, updates_owed=int(values["updates_owed"]), received=received)


class EpisodePacing:
    """Decides whether the robot may start its next episode (see the module docstring)."""

    def __init__(self, max_updates_owed: int):
        if max_updates_owed < 0:
            raise ValueError(f"max_updates_owed must be >= 0, got {max_updates_owed}")
        self.max_updates_owed = max_updates_owed
        self.latest: LearnerProgress | None = None
        self.waited_s = 0.0  # time spent waiting at episode boundaries, in total
        self._waiting_since: float | None = None

    @property
    def waiting(self) -> bool:
        return self._waiting_since is not None

    def report(self, progress: LearnerProgress) -> None:
        self.latest = progress

    def may_start(self, now: float) -> tuple[bool, str]:
        """Called at an episode boundary (and again while waiting): go, or wait and why.

        The first call of a boundary begins the wait; the robot goes once a report received since
        then shows the learner within ``max_updates_owed`` (or not training yet).
        """
        if self._waiting_since is None:
            self._waiting_since = now
        latest = self.latest
        if latest is None or latest.received < self._waiting_since:
            return False, "waiting for a learner progress report"
        if latest.training and latest.updates_owed > self.max_updates_owed:
            return False, f"waiting for the learner: {latest.updates_owed} updates owed (max {self.max_updates_owed})"
        self.waited_s += now - self._waiting_since
        self._waiting_since = None
        return True, "learner caught up" if latest.training else "learner not training yet"
