"""Control-loop timing statistics for diagnostics and benchmarks."""

from __future__ import annotations

from collections import deque

import numpy as np


class TickStats:
    """Rolling tick statistics: period jitter, compute latency and missed deadlines.

    A deadline is missed when a tick starts more than one full period after its
    scheduled time (the tick that should have run in between never ran on time).
    """

    def __init__(self, period: float, window: int = 3000):
        self.period = period
        self.latencies = deque(maxlen=window)
        self.jitters = deque(maxlen=window)
        self.ticks = 0
        self.missed_deadlines = 0
        self._last_start: float | None = None

    def record(self, scheduled: float, started: float, finished: float) -> None:
        self.ticks += 1
        lateness = started - scheduled
        if lateness > self.period:
            self.missed_deadlines += 1
        self.latencies.append(finished - started)
        if self._last_start is not None:
            self.jitters.append(abs((started - self._last_start) - self.period))
        self._last_start = started

    def summary(self) -> dict[str, float]:
        lat = np.asarray(self.latencies) if self.latencies else np.zeros(1)
        jit = np.asarray(self.jitters) if self.jitters else np.zeros(1)
        return {
            "ticks": float(self.ticks),
            "missed_deadlines": float(self.missed_deadlines),
            "latency_p50_ms": float(np.percentile(lat, 50) * 1e3),
            "latency_p99_ms": float(np.percentile(lat, 99) * 1e3),
            "jitter_p50_ms": float(np.percentile(jit, 50) * 1e3),
            "jitter_p99_ms": float(np.percentile(jit, 99) * 1e3),
            "jitter_max_ms": float(jit.max() * 1e3),
        }
