"""The robot's exploration: the initial policy v0, and the same noise around every learned version's mean."""

from __future__ import annotations

import numpy as np


class InitialPolicy:
    """Stand still (`stand`) or explore gently around the default pose (`random`).

    `random` draws uniform actions of the given amplitude and smooths them with a
    first-order filter, so the first minutes of data cover more than one pose
    without jerking the joints. While the control node explores, the controller adds
    the same draws to every learned version's mean action: each version then explores
    exactly as v0 did (a noise std of about 0.06 at amplitude 0.3), whatever the
    actor's own std, so a canary and its baseline are compared under one exploration.
    """

    MODES = ("stand", "random")

    def __init__(self, act_dim: int, mode: str = "random", amplitude: float = 0.3,
                 smoothing: float = 0.8, seed: int = 0):
        if mode not in self.MODES:
            raise ValueError(f"initial policy mode {mode!r} unknown; use one of {self.MODES}")
        if not 0.0 <= amplitude <= 1.0:
            raise ValueError(f"initial policy amplitude {amplitude} must be in [0, 1]")
        self.mode = mode
        self.amplitude = amplitude
        self.smoothing = smoothing
        self._rng = np.random.default_rng(seed)
        self._action = np.zeros(act_dim, dtype=np.float32)

    def describe(self) -> str:
        """The noise in words, e.g. ``random noise of amplitude 0.30`` (diagnostics, the report)."""
        return f"random noise of amplitude {self.amplitude:.2f}" if self.mode == "random" else "no noise (stand)"

    def reset(self) -> None:
        self._action[:] = 0.0

    def __call__(self) -> np.ndarray:
        if self.mode == "random":
            target = self._rng.uniform(-self.amplitude, self.amplitude, self._action.shape)
            self._action[:] = self.smoothing * self._action + (1.0 - self.smoothing) * target
        return self._action.copy()
