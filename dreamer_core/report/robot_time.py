"""Real return against robot time, in robot-minutes.

Robot time is the time the robot spent in episodes: recorded steps / control rate. Time between
episodes (a reset, a paced simulator waiting for the learner, a robot switched off overnight)
is not robot time. The session report and ``bench/a1_learning.py`` both bin returns with this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamer_core.storage.episodes import Episode


@dataclass(frozen=True)
class RobotTimeBin:
    """The complete episodes that ended within ``[start_min, end_min)`` robot-minutes."""

    start_min: float
    end_min: float
    returns: list[float]
    versions: list[int]  # the policy version of each episode

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")


def robot_minutes_at_end(episodes: list[Episode], control_rate_hz: float) -> np.ndarray:
    """Robot-minutes recorded when each episode ended (episodes in the order they ended)."""
    return np.cumsum([e.steps for e in episodes]) / control_rate_hz / 60.0


def return_by_robot_minute(episodes: list[Episode], control_rate_hz: float,
                           bin_minutes: float = 1.0) -> list[RobotTimeBin]:
    """Complete episodes binned by the robot-minute they ended in, every bin up to the last episode's."""
    if bin_minutes <= 0:
        raise ValueError(f"bin_minutes must be > 0, got {bin_minutes}")
    ordered = sorted(episodes, key=lambda e: e.end_stamp)
    ends = robot_minutes_at_end(ordered, control_rate_hz)
    if not ordered:
        return []
    count = int(ends[-1] // bin_minutes) + 1
    bins = [RobotTimeBin(i * bin_minutes, (i + 1) * bin_minutes, [], []) for i in range(count)]
    for episode, end in zip(ordered, ends, strict=True):
        b = bins[int(end // bin_minutes)]
        b.returns.append(episode.ret)
        b.versions.append(episode.policy_version)
    return bins
