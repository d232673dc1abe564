"""Real return per session: did the robot do better today than yesterday?

A session is one run of a control node (its own session id in the replay store). Its figures
come from the store's session metadata (``ReplayStore.sessions()``), which keeps the return of
every complete episode (ended by ``is_last``) and every policy version that acted, evicted steps
included. The session report and ``dreamer-stack sim --sessions`` both read it from here.

A complete episode is one that ended with an ``is_last`` step, for whatever reason: the store
does not record why, so the episode the session's end cut short (and any a fault or a policy swap
ended) counts with its shorter return. With a few episodes per session that pulls the mean return
down; the reward per step (the complete episodes' returns over the session's steps) is not biased
by where episodes were cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamer_core.storage import SessionInfo


@dataclass(frozen=True)
class SessionReturn:
    """One session's complete episodes and the versions that ran in it."""

    number: int  # 1 = the first session, by start
    session_id: str
    start: float  # stamp of its first step (0 when never stamped)
    steps: int
    returns: list[float]  # one per complete episode
    versions: list[int]  # every policy version that acted in the session

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    @property
    def reward_per_step(self) -> float:
        return float(np.sum(self.returns)) / self.steps if self.returns else float("nan")

    def line(self) -> str:
        """e.g. ``session 2 (20261207T101500-1a2b3c4d): mean return 512.30 over 6 complete episodes
        (reward 0.512 per step), versions v0 v1``."""
        mean = (f"mean return {self.mean_return:.2f} over {len(self.returns)} complete episodes (reward "
                f"{self.reward_per_step:.3f} per step)" if self.returns else "no complete episode")
        versions = " ".join(f"v{v}" for v in self.versions) or "-"
        return f"session {self.number} ({self.session_id}): {mean}, versions {versions}"


def return_per_session(sessions: list[SessionInfo]) -> list[SessionReturn]:
    """The sessions that recorded a step, numbered in the order they started."""
    recorded = sorted((s for s in sessions if s.steps > 0), key=lambda s: (s.start, s.session_id))
    return [SessionReturn(number=i, session_id=s.session_id, start=s.start, steps=s.steps,
                          returns=list(s.returns), versions=sorted(s.policy_versions))
            for i, s in enumerate(recorded, start=1)]
