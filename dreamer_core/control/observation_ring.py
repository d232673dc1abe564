"""The robot's most recent observations, for validating a new policy on real inputs."""

from __future__ import annotations

import threading

import numpy as np


class ObservationRing:
    """A fixed ring of the newest ``capacity`` observations.

    The control thread adds one per tick; the bundle validator takes a copy. Both go
    through one lock, so the validator never reads a buffer that is being written.
    """

    def __init__(self, capacity: int, obs_dim: int):
        self._rows = np.zeros((capacity, obs_dim), dtype=np.float32)
        self._lock = threading.Lock()
        self._next = 0
        self._count = 0

    def add(self, obs: np.ndarray) -> None:
        with self._lock:
            self._rows[self._next] = obs
            self._next = (self._next + 1) % len(self._rows)
            self._count = min(self._count + 1, len(self._rows))

    def snapshot(self) -> np.ndarray | None:
        """The stored observations, oldest first (a copy), or None before the first."""
        with self._lock:
            if self._count == 0:
                return None
            order = np.arange(self._next - self._count, self._next) % len(self._rows)
            return self._rows[order]
