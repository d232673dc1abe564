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

Fixed windows (``ReplayStore.windows``): instead of a draw, every window of a part at a fixed
stride (:func:`strided_starts`), the newest ``limit`` of them: the same rows always give the same
windows, so a measurement on them is repeatable (the model-trust gate's).

Held-out split (``held_out.py``): a ``train`` or ``held_out`` draw numbers only the starts
whose whole window lies in rows of that part, so a training window never touches a held-out
block (nor a row whose episode is unknown) and a held-out window holds nothing else. The
per-stream start lists are cached with the stream's rows and rebuilt when they change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .chunk import FIRST, LAST, RESET, TERMINAL
from .held_out import PART_CODES, row_parts


class NotEnoughDataError(ValueError):
    """The store holds no session with enough contiguous steps for the requested length."""


@dataclass
class Segments:
    """One stream's rows in memory: record arrays in order and their cumulative ends."""

    arrays: list[np.ndarray]
    ends: np.ndarray  # ends[k] = number of rows in arrays[0..k]
    # (fraction, block_steps) -> (parts, block) and (fraction, block_steps, part, length) -> PartWindows;
    # valid while the rows are.
    cache: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def column(self, name: str) -> np.ndarray:
        return np.concatenate([a[name] for a in self.arrays])


@dataclass(frozen=True)
class SplitStats:
    """How much of a store one part (``train`` or ``held_out``) holds, for windows of one length."""

    windows: int  # valid window starts
    blocks: int  # distinct held-out blocks (or training blocks) with at least one window starting in them
    steps: int  # rows in this part


@dataclass(frozen=True)
class PartWindows:
    """The windows of one length lying wholly in one part of a stream's rows."""

    starts: np.ndarray  # start rows, ascending
    blocks: int  # distinct blocks those windows start in
    steps: int  # rows of the stream in this part


def _row_parts(seg: Segments, robot_id: str, session_id: str, fraction: float,
               block_steps: int | None) -> tuple[np.ndarray, np.ndarray]:
    key = (fraction, block_steps)
    if key not in seg.cache:
        seg.cache[key] = (row_parts(robot_id, session_id, seg.column("seq"), seg.column("flags"), fraction, block_steps)
                          if seg.arrays else (np.empty(0, np.uint8), np.empty(0, np.int64)))
    return seg.cache[key]


def part_windows(seg: Segments, robot_id: str, session_id: str, length: int, part: str,
                 fraction: float, block_steps: int | None) -> PartWindows:
    """The stream's ``length``-row windows inside ``part`` (``train`` or ``held_out``), cached."""
    key = (fraction, block_steps, part, length)
    if key not in seg.cache:
        parts, block = _row_parts(seg, robot_id, session_id, fraction, block_steps)
        inside = parts == PART_CODES[part]
        # outside[i] = rows before i that are not in the part: a window is clean when none is.
        outside = np.concatenate([[0], np.cumsum(~inside, dtype=np.int64)])
        starts = np.flatnonzero(outside[length:] == outside[: max(len(outside) - length, 0)])  # none if too short
        seg.cache[key] = PartWindows(starts, len(np.unique(block[starts])), int(inside.sum()))
    return seg.cache[key]


def strided_starts(starts: np.ndarray, stride: int) -> np.ndarray:
    """Every ``stride``-th of ascending window ``starts``, counted afresh from the first start of each
    run of consecutive ones (so the picks do not depend on data elsewhere in the stream)."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if not len(starts):
        return starts
    run = np.concatenate([[0], np.cumsum(np.diff(starts) != 1)])
    first = np.flatnonzero(np.concatenate([[True], run[1:] != run[:-1]]))
    return starts[(starts - starts[first][run]) % stride == 0]


def draw_starts(counts: np.ndarray, batch_size: int, rng: np.random.Generator,
                recency: float) -> tuple[np.ndarray, np.ndarray]:
    """Pick (stream index, index among that stream's ``counts`` valid starts) for each sequence;
    at least one stream must have a valid start."""
    total = int(counts.sum())
    picks = rng.integers(0, total, size=batch_size)
    if recency > 0.0:
        # Inverse CDF of p(i) ∝ i + 1 on [0, total).
        ramp = np.minimum((total * np.sqrt(rng.random(batch_size))).astype(np.int64), total - 1)
        picks = np.where(rng.random(batch_size) < recency, ramp, picks)
    cum = np.cumsum(counts)
    stream = np.searchsorted(cum, picks, side="right")
    return stream, picks - (cum[stream] - counts[stream])


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
