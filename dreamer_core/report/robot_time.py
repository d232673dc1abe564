"""Real return against robot time, in robot-minutes.

Robot time is the time the robot spent in episodes: recorded steps / control rate. Time between
episodes (a reset, a paced simulator waiting for the learner, a robot switched off overnight)
is not robot time. Episodes cut short (``complete_episodes``) are robot time too, but their returns
are left out of the bins' means. The session report and ``bench/a1_learning.py`` both bin returns
with this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dreamer_core.storage.episodes import Episode


@dataclass(frozen=True)
class RobotTimeBin:
    """The episodes that ended within ``[start_min, end_min)`` robot-minutes: the complete ones'
    returns and versions, and how many were cut short."""

    start_min: float
    end_min: float
    returns: list[float]
    versions: list[int]  # the policy version of each complete episode
    cut: int  # episodes cut short (their returns are not in ``returns``)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")


def robot_minutes_at_end(episodes: list[Episode], control_rate_hz: float) -> np.ndarray:
    """Robot-minutes recorded when each episode ended (every ended episode, cut ones too, in the order
    they ended)."""
    return np.cumsum([e.steps for e in episodes]) / control_rate_hz / 60.0


def return_by_robot_minute(episodes: list[Episode], control_rate_hz: float, bin_minutes: float = 1.0, *,
                           is_complete: Callable[[Episode], bool]) -> list[RobotTimeBin]:
    """Ended episodes binned by the robot-minute they ended in, every bin up to the last episode's;
    the returns of those ``is_complete`` refuses are counted as cut, not averaged."""
    if bin_minutes <= 0:
        raise ValueError(f"bin_minutes must be > 0, got {bin_minutes}")
    ordered = sorted(episodes, key=lambda e: e.end_stamp)
    if not ordered:
        return []
    index = (robot_minutes_at_end(ordered, control_rate_hz) // bin_minutes).astype(int)
    bins = []
    for i in range(int(index[-1]) + 1):
        ended = [e for e, k in zip(ordered, index, strict=True) if k == i]
        complete = [e for e in ended if is_complete(e)]
        bins.append(RobotTimeBin(i * bin_minutes, (i + 1) * bin_minutes, [e.ret for e in complete],
                                 [e.policy_version for e in complete], len(ended) - len(complete)))
    return bins
