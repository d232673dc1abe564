"""Session metadata: what was recorded per (robot_id, session_id) stream.

A ``Summary`` is a fold over a stream's rows in order, so the summary of evicted
rows (kept in the session's ``meta.json``) plus the rows still stored gives the
whole session's figures, and eviction never changes what ``sessions()`` reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
from pydantic import NonNegativeInt

from .chunk import FIRST, LAST, RESET


@dataclass(frozen=True)
class Summary:
    """Figures of a prefix of a stream (see module docstring). Kept in meta.json, where the
    annotations are checked strictly when it is read (``metadata.SessionMeta``)."""

    steps: NonNegativeInt = 0
    gaps: NonNegativeInt = 0  # seqs missing between stored rows
    returns: tuple[float, ...] = ()  # one per completed episode (ended by is_last)
    policy_versions: tuple[NonNegativeInt, ...] = ()
    start: float | None = None  # stamp of the first row
    end: float | None = None  # stamp of the last row
    last_seq: NonNegativeInt | None = None
    open_return: float | None = None  # reward summed so far by an episode not yet ended

    def to_dict(self) -> dict:
        return asdict(self)


def fold(prior: Summary, rows: np.ndarray) -> Summary:
    """Extend ``prior`` by ``rows`` (records of the same stream that follow it)."""
    if len(rows) == 0:
        return prior
    seq = rows["seq"].astype(np.int64)
    flags = rows["flags"]
    gaps = prior.gaps + int(np.sum(np.diff(seq) - 1))
    contiguous = prior.last_seq is not None and int(seq[0]) == prior.last_seq + 1
    if prior.last_seq is not None:
        gaps += max(0, int(seq[0]) - prior.last_seq - 1)
    starts = (flags & (FIRST | RESET)) != 0
    starts[0] |= not contiguous  # rows missing before (skipped chunk, eviction): the episode is broken
    lasts = (flags & LAST) != 0
    csum = np.concatenate([[0.0], np.cumsum(rows["reward"], dtype=np.float64)])
    returns = list(prior.returns)
    carry, begin = (prior.open_return if contiguous else None), 0
    for i in np.flatnonzero(starts | lasts):
        if starts[i]:
            carry, begin = 0.0, i
        if lasts[i] and carry is not None:
            returns.append(carry + float(csum[i + 1] - csum[begin]))
            carry = None
    if carry is not None:
        carry += float(csum[-1] - csum[begin])
    versions = set(prior.policy_versions) | {int(v) for v in np.unique(rows["policy_version"])}
    return replace(
        prior,
        steps=prior.steps + len(rows),
        gaps=gaps,
        returns=tuple(returns),
        policy_versions=tuple(sorted(versions)),
        start=prior.start if prior.start is not None else float(rows["stamp"][0]),
        end=float(rows["stamp"][-1]),
        last_seq=int(seq[-1]),
        open_return=carry,
    )


@dataclass
class SessionInfo:
    """What ``ReplayStore.sessions()`` lists for one (robot_id, session_id) stream.

    ``steps`` counts every step ever stored (evicted ones too); ``stored_steps`` those
    still held. ``episodes`` counts completed episodes (ended by is_last), one return each.
    ``start``/``end`` are the stamps of the first and last step (``Transition.stamp``: the
    publisher's ROS clock in seconds; 0 when never stamped).
    """

    robot_id: str
    session_id: str
    start: float
    end: float
    steps: int
    stored_steps: int
    episodes: int
    returns: list[float] = field(default_factory=list)
    policy_versions: list[int] = field(default_factory=list)
    gaps: int = 0
    duplicates: int = 0  # dropped by this process (not persisted)

    @classmethod
    def from_summary(
        cls, robot_id: str, session_id: str, summary: Summary, stored: int, duplicates: int
    ) -> SessionInfo:
        return cls(
            robot_id=robot_id,
            session_id=session_id,
            start=summary.start or 0.0,
            end=summary.end or 0.0,
            steps=summary.steps,
            stored_steps=stored,
            episodes=len(summary.returns),
            returns=list(summary.returns),
            policy_versions=list(summary.policy_versions),
            gaps=summary.gaps,
            duplicates=duplicates,
        )
