"""Drawing B×T training sequences from the rows held in memory (no file reads per batch).

Each stream's rows live in a list of record arrays (sealed chunks, then the open
chunk); a sequence is copied out of one or two of them with slices, so a batch
costs O(B) numpy copies regardless of the store's size.

Start positions: every valid start (a position with ``length`` rows after it in
the same session) is numbered in store order (sessions by creation time, rows in
order). A uniform draw picks any of them with equal probability. A recency draw,
taken for each sequence with probability ``recency``, picks start ``i`` of ``N``
with probability proportional to ``i + 1``: the newest data is twice as likely
as the median and the oldest almost never drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chunk import FIRST, LAST, RESET, TERMINAL


class NotEnoughDataError(ValueError):
    """The store holds no session with enough contiguous steps for the requested length."""


@dataclass
class Segments:
    """One stream's rows in memory: record arrays in order and their cumulative ends."""

    arrays: list[np.ndarray]
    ends: np.ndarray  # ends[k] = number of rows in arrays[0..k]

    @property
    def size(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0


def draw_starts(
    sizes: np.ndarray, batch_size: int, length: int, rng: np.random.Generator, recency: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pick (stream index, start row) for each sequence of the batch."""
    valid = np.maximum(sizes - length + 1, 0)
    total = int(valid.sum())
    if total == 0:
        longest = int(sizes.max()) if len(sizes) else 0
        raise NotEnoughDataError(
            f"cannot sample sequences of length {length}: the longest session holds {longest} steps "
            f"({len(sizes)} sessions); record more data or ask for shorter sequences"
        )
    picks = rng.integers(0, total, size=batch_size)
    if recency > 0.0:
        # Inverse CDF of p(i) ∝ i + 1 on [0, total).
        ramp = np.minimum((total * np.sqrt(rng.random(batch_size))).astype(np.int64), total - 1)
        picks = np.where(rng.random(batch_size) < recency, ramp, picks)
    cum = np.cumsum(valid)
    stream = np.searchsorted(cum, picks, side="right")
    return stream, picks - (cum[stream] - valid[stream])


def gather(
    segments: list[Segments],
    stream: np.ndarray,
    start: np.ndarray,
    length: int,
    obs_dim: int,
    act_dim: int,
) -> dict[str, np.ndarray]:
    """Copy the chosen sequences into a batch dict (see ``ReplayStore.sample`` for the keys)."""
    batch = len(stream)
    obs = np.empty((batch, length, obs_dim), np.float32)
    action = np.empty((batch, length, act_dim), np.float32)
    reward = np.empty((batch, length), np.float32)
    flags = np.empty((batch, length), np.uint32)
    is_first = np.zeros((batch, length), bool)
    for b in range(batch):
        seg = segments[stream[b]]
        k = int(np.searchsorted(seg.ends, start[b], side="right"))
        pos = int(start[b]) - (int(seg.ends[k - 1]) if k else 0)
        t, prev_seq = 0, None
        while t < length:
            rows = seg.arrays[k]
            take = min(length - t, len(rows) - pos)
            piece = rows[pos : pos + take]
            obs[b, t : t + take] = piece["obs"]
            action[b, t : t + take] = piece["action"]
            reward[b, t : t + take] = piece["reward"]
            flags[b, t : t + take] = piece["flags"]
            # Rows missing between two arrays (a skipped corrupt chunk) break continuity.
            if prev_seq is not None and int(piece["seq"][0]) != prev_seq + 1:
                is_first[b, t] = True
            prev_seq = int(piece["seq"][-1])
            t += take
            k, pos = k + 1, 0
    is_first |= (flags & (FIRST | RESET)) != 0
    # Every sequence starts a fresh latent state in the learner, so its first step counts as a start.
    is_first[:, 0] = True
    return {
        "obs": obs,
        "action": action,
        "reward": reward,
        "is_first": is_first,
        "is_last": (flags & LAST) != 0,
        "is_terminal": (flags & TERMINAL) != 0,
    }
