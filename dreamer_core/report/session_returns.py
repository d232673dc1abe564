"""Real return per session: did the robot do better today than yesterday?

A session is one run of a control node (its own session id in the replay store). Its steps and the
policy versions that acted come from the store's session metadata (``ReplayStore.sessions()``,
evicted steps included); its returns are those of its **complete** episodes (a fall or the time
limit: :mod:`dreamer_core.report.complete_episodes`), so the episode the session's end cut short
does not read as a worse policy. The session report and ``dreamer-stack sim --sessions`` both read
it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamer_core.report.run_data import RunData
from dreamer_core.storage.episodes import Episode


@dataclass(frozen=True)
class SessionReturn:
    """One session's complete episodes and the versions that ran in it."""

    number: int  # 1 = the first session, by start
    session_id: str
    start: float  # stamp of its first step (0 when never stamped)
    steps: int
    returns: list[float]  # one per complete episode
    rows: int  # of its complete episodes
    versions: list[int]  # every policy version that acted in the session

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    @property
    def reward_per_step(self) -> float:
        return float(np.sum(self.returns)) / self.rows if self.returns else float("nan")

    def line(self) -> str:
        """e.g. ``session 2 (20261207T101500-1a2b3c4d): mean return 512.30 over 6 complete episodes
        (reward 0.512 per step), versions v0 v1``."""
        mean = (f"mean return {self.mean_return:.2f} over {len(self.returns)} complete episodes (reward "
                f"{self.reward_per_step:.3f} per step)" if self.returns else "no complete episode")
        versions = " ".join(f"v{v}" for v in self.versions) or "-"
        return f"session {self.number} ({self.session_id}): {mean}, versions {versions}"


def return_per_session(data: RunData) -> list[SessionReturn]:
    """The run's sessions that recorded a step, numbered in the order they started."""
    complete: dict[str, list[Episode]] = {}
    for episode in data.complete_episodes():
        complete.setdefault(episode.session_id, []).append(episode)
    recorded = sorted((s for s in data.sessions if s.steps > 0), key=lambda s: (s.start, s.session_id))
    out = []
    for number, session in enumerate(recorded, start=1):
        episodes = complete.get(session.session_id, [])
        out.append(SessionReturn(number=number, session_id=session.session_id, start=session.start,
                                 steps=session.steps, returns=[e.ret for e in episodes],
                                 rows=sum(e.steps for e in episodes), versions=sorted(session.policy_versions)))
    return out
