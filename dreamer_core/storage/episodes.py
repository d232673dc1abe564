"""Episodes of a replay store: where each one starts and ends, its real return and its policy version.

An episode is a run of rows of one session from an ``is_first`` row (which the store also sets
after a seq gap, a restart or an ``is_last`` row) to the next ``is_last`` row. Its return is the
sum of its rewards (the reward of a row is received on arriving at its observation, so the
first row's is 0 by the controller's convention). The learner's trust checks, the report and
the canary figures all read episodes from here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .sessions import SessionInfo


@dataclass(frozen=True)
class Episode:
    """One episode as stored (rows of one session, in seq order)."""

    robot_id: str
    session_id: str
    first_seq: int
    last_seq: int
    start_stamp: float
    end_stamp: float
    steps: int
    ret: float
    policy_version: int  # the version that acted in its first row
    mixed_versions: bool  # another version acted later in the same episode (a swap mid-episode)
    complete: bool  # ended by an is_last row (False: still running, or cut by missing rows)
    terminal: bool  # ended in a terminal state (e.g. a fall)
    # Its first row is an episode start (False: the rows before it were evicted, so first_seq is not
    # where the episode began and its return misses their rewards).
    started: bool


class _Open:
    """The episode being read: its first row and running sums."""

    def __init__(self, info: SessionInfo, seq: int, stamp: float, version: int, started: bool):
        self.info, self.first_seq, self.start_stamp, self.version = info, seq, stamp, version
        self.started = started
        self.steps, self.ret, self.mixed = 0, 0.0, False
        self.last_seq, self.end_stamp = seq, stamp

    def close(self, *, complete: bool, terminal: bool) -> Episode:
        return Episode(self.info.robot_id, self.info.session_id, self.first_seq, self.last_seq, self.start_stamp,
                       self.end_stamp, self.steps, self.ret, self.version, self.mixed, complete, terminal,
                       self.started)


def episodes(chunks: Iterable[tuple[SessionInfo, dict[str, np.ndarray]]]) -> Iterator[Episode]:
    """Episodes in store order from ``ReplayStore.iter_steps()`` output (complete ones and, per session,
    the one still open at its end, with ``complete=False``)."""
    current: _Open | None = None
    for info, rows in chunks:
        if current is not None and (current.info.robot_id, current.info.session_id) != (info.robot_id, info.session_id):
            yield current.close(complete=False, terminal=False)
            current = None
        # Pieces of rows between episode boundaries: before each is_first row, after each is_last row.
        cuts = {0, len(rows["seq"])} | {int(i) for i in np.flatnonzero(rows["is_first"])}
        cuts |= {int(i) + 1 for i in np.flatnonzero(rows["is_last"])}
        bounds = sorted(cuts)
        for begin, end in itertools.pairwise(bounds):
            if rows["is_first"][begin] and current is not None:
                yield current.close(complete=False, terminal=False)
                current = None
            if current is None:
                current = _Open(info, int(rows["seq"][begin]), float(rows["stamp"][begin]),
                                int(rows["policy_version"][begin]), bool(rows["is_first"][begin]))
            piece = slice(begin, end)
            current.steps += end - begin
            current.ret += float(np.sum(rows["reward"][piece], dtype=np.float64))
            current.mixed |= bool(np.any(rows["policy_version"][piece] != current.version))
            current.last_seq, current.end_stamp = int(rows["seq"][end - 1]), float(rows["stamp"][end - 1])
            if rows["is_last"][end - 1]:
                yield current.close(complete=True, terminal=bool(rows["is_terminal"][end - 1]))
                current = None
    if current is not None:
        yield current.close(complete=False, terminal=False)
