"""What ``bench/a1_learning.py --seeds N`` prints of each run, and its closing line over the seeds.

Per run, over the episodes that ended within the robot-time budget (robot-minutes as in
``robot_time``; means over complete episodes only, as in ``complete_episodes``): the initial
policy's (v0) mean return, the mean return of the episodes that ended in the last
``WINDOW_MINUTES`` robot-minutes (whatever version ran them), the forward distance per episode
(mean, and its mean in the first and in the last window) where the simulator recorded it, the
falls and cut episodes, the learner's promotions, the robot's rollbacks, the wall time and the
run's verdict line (``verdict``). Pure: it reads a loaded ``RunData``, so it is tested without a
stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamer_core.report.robot_time import robot_minutes_at_end
from dreamer_core.report.run_data import RunData
from dreamer_core.report.verdict import verdict
from dreamer_core.storage.episodes import Episode

WINDOW_MINUTES = 2.0
# The closing line counts the seeds whose last-window mean reached this multiple of v0's.
IMPROVEMENT_FACTOR = 1.1


@dataclass(frozen=True)
class RunSummary:
    seed: int
    v0_mean: float | None  # None: no complete v0 episode
    v0_episodes: int
    last_mean: float | None  # complete episodes that ended in the last window
    last_episodes: int
    forward_mean: float | None  # m per complete episode; None: no travel log
    forward_first: float | None  # the same over the first window
    forward_last: float | None  # ... and over the last
    falls: int
    cut: int
    promotions: int
    rollbacks: int
    wall_s: float
    verdict: str

    @property
    def ratio(self) -> float | None:
        """Last-window mean over v0's; None where either is missing or v0's is not positive."""
        if self.v0_mean is None or self.last_mean is None or self.v0_mean <= 0:
            return None
        return self.last_mean / self.v0_mean


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _forward(data: RunData, episodes: list[Episode]) -> float | None:
    return _mean([m for m in map(data.forward_m, episodes) if m is not None])


def summarize_run(data: RunData, *, seed: int, budget_minutes: float, wall_s: float) -> RunSummary:
    """The summary of one bench run (see the module docstring)."""
    if data.control_rate_hz is None:
        raise ValueError(f"the run's control rate is unknown ({data.notes.get('robot config', 'no robot config')})")
    ended = sorted(data.episodes, key=lambda e: e.end_stamp)
    ends = robot_minutes_at_end(ended, data.control_rate_hz)
    within = [(e, end) for e, end in zip(ended, ends, strict=True) if end <= budget_minutes + 1e-9]
    complete = [(e, end) for e, end in within if data.is_complete(e)]
    first = [e for e, end in complete if end <= WINDOW_MINUTES]
    last = [e for e, end in complete if end > budget_minutes - WINDOW_MINUTES]
    v0 = [e.ret for e, _ in complete if e.policy_version == 0 and not e.mixed_versions]
    return RunSummary(
        seed=seed, v0_mean=_mean(v0), v0_episodes=len(v0), last_mean=_mean([e.ret for e in last]),
        last_episodes=len(last), forward_mean=_forward(data, [e for e, _ in complete]),
        forward_first=_forward(data, first), forward_last=_forward(data, last),
        falls=sum(e.terminal for e, _ in complete), cut=len(within) - len(complete),
        promotions=sum(d.promoted for d in data.decisions),
        rollbacks=sum(e.event == "rolled_back" for e in data.events), wall_s=wall_s,
        verdict=verdict(data.complete_returns_by_version()).line)


def _number(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


SUMMARY_HEADER = (f"seed | v0 mean (n) | last {WINDOW_MINUTES:g} min mean (n) | ratio | forward m/episode: mean, "
                  f"first {WINDOW_MINUTES:g} min -> last {WINDOW_MINUTES:g} min | falls | cut | promotions | "
                  "rollbacks | wall min")


def summary_row(s: RunSummary) -> str:
    """One line of the per-seed table under ``SUMMARY_HEADER``."""
    ratio = "-" if s.ratio is None else f"{s.ratio:.2f}x"
    forward = (f"{_number(s.forward_mean, '.2f')}, {_number(s.forward_first, '.2f')} -> "
               f"{_number(s.forward_last, '.2f')}")
    return (f"{s.seed} | {_number(s.v0_mean)} ({s.v0_episodes}) | {_number(s.last_mean)} ({s.last_episodes}) | "
            f"{ratio} | {forward} | {s.falls} | {s.cut} | {s.promotions} | {s.rollbacks} | {s.wall_s / 60:.1f}")


def seeds_line(summaries: list[RunSummary], factor: float = IMPROVEMENT_FACTOR) -> str:
    """How many seeds' last-window mean reached ``factor`` times v0's."""
    judged = [s for s in summaries if s.ratio is not None]
    reached = sum(s.ratio >= factor for s in judged)
    unjudged = len(summaries) - len(judged)
    tail = (f" ({unjudged} not judged: no complete v0 or last-window episode, or v0's mean <= 0)"
            if unjudged else "")
    return (f"last {WINDOW_MINUTES:g} robot-minutes' mean return >= {factor:g}x v0's in {reached} of "
            f"{len(summaries)} seeds{tail}")
