"""Held-out blocks: the share of real data the learner never trains on, to check its model.

The unit is a **block**: a piece of an episode. An episode is cut where its session's seq is a
multiple of ``block_steps`` (and at its first row); with ``block_steps`` None a block is the whole
episode. A long episode (a robot walking for minutes) so gives many small held-out units instead
of one all-or-nothing draw, and held-out data accumulates at the held-out fraction from the first
minutes on.

The rule is a pure function of a block's identity (robot_id, session_id and the seq of its first
row): a block is held out when a keyed hash of that identity, read as a number in [0, 1), is below
the held-out fraction. So

- it is decided by a block's first row, before the block has ended: no training window ever
  reaches into a block that is still being recorded and will be held out;
- it never changes: not across learner restarts (nothing to persist), not when other sessions
  are added or old chunks evicted, and the same on every machine reading the store;
- every policy version's data, the newest included, is held out in the same proportion (a fixed
  pseudo-random 1 in 1/fraction draw per block), so a version's held-out blocks are a fair
  sample of what it did.

An episode starts at a row flagged ``is_first`` (the writer also flags a session's first row,
a row after a seq gap and a row after ``is_last``). Rows before the first such row of a stream
belong to an episode whose first row was evicted; those rows are neither trained on nor measured
(:data:`UNKNOWN`). A block that starts at an episode's first row has the episode's identity, so
``block_steps`` None gives exactly the whole-episode assignment. Lowering the fraction only
releases held-out blocks for training; raising it, or changing ``block_steps``, would count data a
model has trained on as held out (the learner refuses to resume then, see docs/model_trust.md).
"""

from __future__ import annotations

import hashlib

import numpy as np

from .chunk import FIRST, RESET

# The part of the data a row belongs to.
TRAIN, HELD_OUT, UNKNOWN = 0, 1, 2
PART_CODES = {"train": TRAIN, "held_out": HELD_OUT}
# Changing the key reassigns every block; it names the rule's version.
_KEY = b"dreamer-held-out-v1"


def block_score(robot_id: str, session_id: str, first_seq: int) -> float:
    """The block's fixed pseudo-random number in [0, 1)."""
    digest = hashlib.blake2b(f"{robot_id}\0{session_id}\0{first_seq}".encode(), key=_KEY, digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def is_held_out(robot_id: str, session_id: str, first_seq: int, fraction: float) -> bool:
    """Whether the block that starts at ``first_seq`` of this session is held out."""
    return block_score(robot_id, session_id, first_seq) < fraction


def check_fraction(fraction: float) -> float:
    """``fraction`` if it is a usable held-out fraction (in [0, 1)), else ValueError."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1), got {fraction}")
    return fraction


def check_block_steps(block_steps: int | None) -> int | None:
    """``block_steps`` if it is usable (None or a positive integer), else ValueError."""
    if block_steps is not None and block_steps < 1:
        raise ValueError(f"held_out_block_steps must be >= 1 or None (whole episodes), got {block_steps}")
    return block_steps


def row_parts(robot_id: str, session_id: str, seq: np.ndarray, flags: np.ndarray,
              fraction: float, block_steps: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Per row of one stream (in order): its part (:data:`TRAIN`, :data:`HELD_OUT` or
    :data:`UNKNOWN`) and its block's index in the stream (−1 before the first episode start)."""
    starts = (flags & (FIRST | RESET)) != 0
    known = np.cumsum(starts, dtype=np.int64) > 0
    if block_steps is not None:
        starts = starts | (known & (seq % block_steps == 0))
    block = np.cumsum(starts, dtype=np.int64) - 1
    held = np.array([is_held_out(robot_id, session_id, int(seq[row]), fraction) for row in np.flatnonzero(starts)],
                    dtype=bool)
    parts = np.full(len(seq), UNKNOWN, np.uint8)
    parts[known] = np.where(held[block[known]], HELD_OUT, TRAIN)
    return parts, block
