"""Offline training: updates beyond the train ratio while the robot collects nothing.

Between sessions (the robot switched off overnight, a break of ``dreamer-stack sim --sessions``)
no transitions arrive, so the train ratio (:class:`~dreamer_core.runners.train_ratio.TrainRatio`)
allows no more updates and the learner would idle. With offline training on, once no step has
arrived for ``offline_idle_s`` an *idle period* begins, in which the learner keeps training on the
stored replay beyond the ratio, up to ``offline_max_updates`` updates and ``offline_max_minutes``
minutes of wall time (0: no limit of that kind). The first step that arrives ends the period; the
next one starts with a fresh budget.

The learner counts these updates apart from the others (``LearnerState.offline_updates``), so the
train ratio keeps pacing the updates made on collected data: a session after a break gets its
data's full share of updates, not less for the offline ones.

Time comes from ``clock`` (seconds, monotonic), so tests count updates and move a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class OfflineSettings(Protocol):
    """The learner settings this module reads (``LearnerSettings``; live: read at every call)."""

    offline_training: bool
    offline_idle_s: float
    offline_max_updates: int
    offline_max_minutes: float


class OfflineBudget:
    """The idle period and what it has spent (see the module docstring); logs when a period begins,
    spends its budget and ends."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] = lambda text: None):
        self.clock = clock
        self.log = log
        self.updates = 0  # made in the current idle period
        self._last_arrival: float | None = None  # when steps last arrived (first call: the learner's start)
        self._started: float | None = None  # when the current idle period began; None outside one
        self._spent_logged = False

    def observe(self, arrived: int) -> None:
        """Note how many steps arrived in the store since the last call; any ends the idle period."""
        if arrived or self._last_arrival is None:
            now = self.clock()
            if self._started is not None:
                self.log(f"new steps arrived: offline training ends after {self.updates} updates in "
                         f"{(now - self._started) / 60:.1f} min")
            self._last_arrival, self._started, self.updates, self._spent_logged = now, None, 0, False

    def allowed(self, settings: OfflineSettings, at_most: int) -> int:
        """Updates the learner may make now beyond the train ratio, at most ``at_most``: 0 while off,
        while steps still arrive, or once the idle period's budget is spent."""
        if not settings.offline_training or self._last_arrival is None:
            return 0
        now = self.clock()
        if now - self._last_arrival < settings.offline_idle_s:
            return 0
        if self._started is None:
            self._started = now
            self.log(f"no new steps for {settings.offline_idle_s:g} s: training offline on the stored replay "
                     f"(budget per idle period: {_budget(settings)})")
        if self._spent(settings, now):
            if not self._spent_logged:
                self._spent_logged = True
                self.log(f"offline budget spent: {self.updates} updates in {(now - self._started) / 60:.1f} min; "
                         "waiting for new steps")
            return 0
        if settings.offline_max_updates:
            return min(at_most, settings.offline_max_updates - self.updates)
        return at_most

    def spent(self, updates: int) -> None:
        """Count updates made under :meth:`allowed`."""
        self.updates += updates

    def status(self, settings: OfflineSettings) -> str:
        """One line for diagnostics: ``off``, ``collecting ...``, ``training ...`` or ``budget spent ...``."""
        if not settings.offline_training:
            return "off"
        if self._last_arrival is None:
            return "collecting"
        now = self.clock()
        if self._started is None:
            return (f"collecting: last new step {now - self._last_arrival:.0f} s ago "
                    f"(offline after {settings.offline_idle_s:g} s)")
        updates = f"{self.updates}" + (f"/{settings.offline_max_updates}" if settings.offline_max_updates else "")
        minutes = f"{(now - self._started) / 60:.1f}" + (
            f"/{settings.offline_max_minutes:g}" if settings.offline_max_minutes else "")
        return f"{'budget spent' if self._spent(settings, now) else 'training'}: {updates} updates, {minutes} min"

    def _spent(self, settings: OfflineSettings, now: float) -> bool:
        """The current idle period has used its updates or its minutes."""
        minutes = (now - self._started) / 60
        return bool((settings.offline_max_updates and self.updates >= settings.offline_max_updates)
                    or (settings.offline_max_minutes and minutes >= settings.offline_max_minutes))


def _budget(settings: OfflineSettings) -> str:
    limits = [f"{settings.offline_max_updates} updates" if settings.offline_max_updates else "",
              f"{settings.offline_max_minutes:g} min" if settings.offline_max_minutes else ""]
    return ", ".join(limit for limit in limits if limit) or "no limit"
