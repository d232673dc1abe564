"""A tiny 2-D point-mass task for learning tests: push a mass to the origin and keep it there.

Pure numpy, deterministic given the seed, and fast enough that a learner test spends its time
training rather than simulating. Interface: ``reset(seed) -> obs`` and
``step(action) -> (obs, reward, terminated, truncated)``.
"""

from __future__ import annotations

import numpy as np


class PointMass:
    """State: position and velocity in the plane; action: force in [−1, 1]²; reward: −‖position‖.

    Episodes last ``episode_len`` steps (truncation, never termination). A random policy drifts
    around its start, a good one reaches the origin within a few steps and brakes.
    """

    obs_dim = 4
    act_dim = 2

    def __init__(self, episode_len: int = 50, dt: float = 0.1, damping: float = 0.5, seed: int = 0):
        self.episode_len, self.dt, self.damping = episode_len, dt, damping
        self.rng = np.random.default_rng(seed)
        self.pos = np.zeros(2)
        self.vel = np.zeros(2)
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.pos, self.vel]).astype(np.float32)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode at a random position in [−1, 1]², at rest."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.pos = self.rng.uniform(-1.0, 1.0, 2)
        self.vel = np.zeros(2)
        self.t = 0
        return self._obs()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        """Apply a force for one step; returns (obs, reward, terminated, truncated)."""
        force = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self.vel = self.vel + self.dt * (4.0 * force - self.damping * self.vel)
        self.pos = np.clip(self.pos + self.dt * self.vel, -2.0, 2.0)
        self.t += 1
        reward = -float(np.linalg.norm(self.pos))
        return self._obs(), reward, False, self.t >= self.episode_len
