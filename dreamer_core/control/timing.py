"""The fixed-rate loop of the control node and the simulator, and its timing statistics."""

from __future__ import annotations

import bisect
import os
import time
from collections import deque
from collections.abc import Callable

import numpy as np

# Upper bin edges (ms, 1-2-5 steps) of the tick-time histograms; a last bin takes everything above.
HISTOGRAM_EDGES_MS = (*(m * 10.0**e for e in range(-2, 3) for m in (1, 2, 5)), 1000.0)


class TickHistogram:
    """Counts of tick times in the fixed bins of :data:`HISTOGRAM_EDGES_MS`, since start (a report
    adds up whole sessions; the rolling windows of :class:`TickStats` forget)."""

    def __init__(self):
        self._edges_s = [edge * 1e-3 for edge in HISTOGRAM_EDGES_MS]
        self.counts = [0] * (len(HISTOGRAM_EDGES_MS) + 1)

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_right(self._edges_s, seconds)] += 1

    def text(self) -> str:
        """The counts as comma-separated integers (a diagnostics value)."""
        return ",".join(map(str, self.counts))


class TickStats:
    """Rolling tick statistics: period jitter, compute latency and missed deadlines.

    A deadline is missed when a tick starts more than one full period after its
    scheduled time (the tick that should have run in between never ran on time).
    """

    def __init__(self, period: float, window: int = 3000):
        self.period = period
        self.latencies = deque(maxlen=window)
        self.jitters = deque(maxlen=window)
        self.latency_histogram = TickHistogram()
        self.jitter_histogram = TickHistogram()
        self.ticks = 0
        self.missed_deadlines = 0
        self._last_start: float | None = None

    def record(self, scheduled: float, started: float, finished: float) -> None:
        lateness = started - scheduled
        if lateness > self.period:
            self.missed_deadlines += 1
        self.latencies.append(finished - started)
        self.latency_histogram.add(finished - started)
        if self._last_start is not None:
            self.jitters.append(abs((started - self._last_start) - self.period))
            self.jitter_histogram.add(self.jitters[-1])
        self._last_start = started
        self.ticks += 1  # last: a reader that sees the new count sees the tick's numbers

    def summary(self) -> dict[str, int | float]:
        """Counters as ints, times in ms (copies first: the loop appends from another thread)."""
        lat = np.asarray(list(self.latencies) or [0.0])
        jit = np.asarray(list(self.jitters) or [0.0])
        return {
            "ticks": self.ticks,
            "missed_deadlines": self.missed_deadlines,
            "latency_p50_ms": float(np.percentile(lat, 50) * 1e3),
            "latency_p99_ms": float(np.percentile(lat, 99) * 1e3),
            "jitter_p50_ms": float(np.percentile(jit, 50) * 1e3),
            "jitter_p99_ms": float(np.percentile(jit, 99) * 1e3),
            "jitter_max_ms": float(jit.max() * 1e3),
        }

    def histograms(self) -> dict[str, str]:
        """Latency and jitter counts per bin since start, with the bin edges (diagnostics values)."""
        return {"histogram_edges_ms": ",".join(f"{edge:g}" for edge in HISTOGRAM_EDGES_MS),
                "latency_histogram": self.latency_histogram.text(), "jitter_histogram": self.jitter_histogram.text()}


class FixedRateLoop:
    """Calls ``step(started)`` once per ``period``: sleeps until the next deadline, never bursts.

    A tick that starts more than one period late restarts the schedule from now
    (catching up would send a burst of commands computed from the same readings);
    ``on_late(lateness_s, previous_tick_s)`` hears about it. ``last_tick`` and
    ``stats.ticks`` let another thread see that the loop is alive.
    """

    def __init__(self, period: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if not period > 0:
            raise ValueError(f"loop period must be > 0 s, got {period}")
        self.period = period
        self.stats = TickStats(period)
        self.last_tick: float | None = None  # clock time the last tick finished
        self._clock, self._sleep = clock, sleep

    def run(self, step: Callable[[float], None], keep_running: Callable[[], bool],
            on_late: Callable[[float, float], None] | None = None) -> None:
        scheduled = self._clock()
        previous = 0.0
        while keep_running():
            scheduled += self.period
            delay = scheduled - self._clock()
            if delay > 0:
                self._sleep(delay)
            started = self._clock()
            step(started)
            finished = self._clock()
            self.stats.record(scheduled, started, finished)
            self.last_tick = finished
            if started - scheduled > self.period:
                if on_late is not None:
                    on_late(started - scheduled, previous)
                scheduled = started
            previous = finished - started

    def tick_age(self, now: float) -> float | None:
        """Seconds since the last tick finished (None before the first)."""
        return None if self.last_tick is None else now - self.last_tick


def raise_process_priority(niceness: int = -10) -> str | None:
    """Lower the process's niceness (threads started later inherit it); the refusal as text, or None.

    A GIL holder that unrelated load preempts would otherwise stall the real-time control thread.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except OSError as exc:
        return f"could not raise the process priority to nice {niceness} ({exc})"
    return None


def request_realtime(priority: int) -> str | None:
    """SCHED_FIFO at ``priority`` for the calling thread (Linux, needs CAP_SYS_NICE); the refusal as text, or None."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:
        return f"realtime_priority {priority} not granted ({exc}); running best effort"
    return None
