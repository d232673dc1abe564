"""Held-out episodes: the share of real episodes the learner never trains on, to check its model.

The rule is a pure function of an episode's identity (robot_id, session_id and the seq of its
first row): an episode is held out when a keyed hash of that identity, read as a number in
[0, 1), is below the held-out fraction. So

- it is decided by an episode's first row, before the episode has ended: no training window
  ever reaches into an episode that is still running and will be held out;
- it never changes: not across learner restarts (nothing to persist), not when other sessions
  are added or old chunks evicted, and the same on every machine reading the store;
- every policy version's episodes, the newest included, are held out in the same proportion
  (a fixed pseudo-random 1 in 1/fraction draw), so a version's held-out episodes are a fair
  sample of what it did.

An episode starts at a row flagged ``is_first`` (the writer also flags a session's first row,
a row after a seq gap and a row after ``is_last``). Rows before the first such row of a stream
belong to an episode whose first row was evicted: its identity is lost, so those rows are
neither trained on nor measured (:data:`UNKNOWN`). Raising the fraction only adds held-out
episodes; lowering it releases some for training (the learner refuses to resume with a lower
one, see docs/model_trust.md).
"""

from __future__ import annotations

import hashlib

import numpy as np

from .chunk import FIRST, RESET

# The part of the data a row belongs to.
TRAIN, HELD_OUT, UNKNOWN = 0, 1, 2
PART_CODES = {"train": TRAIN, "held_out": HELD_OUT}
# Changing the key reassigns every episode; it names the rule's version.
_KEY = b"dreamer-held-out-v1"


def episode_score(robot_id: str, session_id: str, first_seq: int) -> float:
    """The episode's fixed pseudo-random number in [0, 1)."""
    digest = hashlib.blake2b(f"{robot_id}\0{session_id}\0{first_seq}".encode(), key=_KEY, digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def is_held_out(robot_id: str, session_id: str, first_seq: int, fraction: float) -> bool:
    """Whether the episode that starts at ``first_seq`` of this session is held out."""
    return episode_score(robot_id, session_id, first_seq) < fraction


def check_fraction(fraction: float) -> float:
    """``fraction`` if it is a usable held-out fraction (in [0, 1)), else ValueError."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1), got {fraction}")
    return fraction


def row_parts(robot_id: str, session_id: str, seq: np.ndarray, flags: np.ndarray,
              fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row of one stream (in order): its part (:data:`TRAIN`, :data:`HELD_OUT` or
    :data:`UNKNOWN`) and its episode's index in the stream (−1 before the first episode start)."""
    starts = (flags & (FIRST | RESET)) != 0
    episode = np.cumsum(starts, dtype=np.int64) - 1
    held = np.array([is_held_out(robot_id, session_id, int(seq[row]), fraction) for row in np.flatnonzero(starts)],
                    dtype=bool)
    parts = np.full(len(seq), UNKNOWN, np.uint8)
    known = episode >= 0
    parts[known] = np.where(held[episode[known]], HELD_OUT, TRAIN)
    return parts, episode
