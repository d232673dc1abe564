"""The read side of a store: training batches, rows for export, sessions and counters.

Everything here reads the rows held in memory (or memory-mapped) by a ``StoreState``; no
file is read per call.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .chunk import FIRST, LAST, RESET, TERMINAL
from .sampler import NotEnoughDataError, SplitStats, draw_starts, gather, part_windows, strided_starts
from .sessions import SessionInfo, fold
from .streams import StoreState


def sample(
    state: StoreState, batch_size: int, length: int, rng: np.random.Generator, recency: float,
    split: str, held_out_fraction: float, held_out_block_steps: int | None,
) -> dict[str, np.ndarray]:
    """B×T sequences (see ``ReplayStore.sample``)."""
    streams = state.ordered()
    segments = [s.segments_view() for s in streams]
    if split == "all":
        sizes = np.array([seg.size for seg in segments], dtype=np.int64)
        counts = np.maximum(sizes - length + 1, 0)
        if not counts.any():
            longest = int(sizes.max()) if len(sizes) else 0
            raise NotEnoughDataError(
                f"cannot sample sequences of length {length}: the longest session holds {longest} steps "
                f"({len(sizes)} sessions); record more data or ask for shorter sequences"
            )
        which, start = draw_starts(counts, batch_size, rng, recency)
    else:
        windows = _part_starts(state, segments, length, split, held_out_fraction, held_out_block_steps)
        counts = np.array([len(starts) for starts in windows], dtype=np.int64)
        which, index = draw_starts(counts, batch_size, rng, recency)
        start = np.array([windows[w][i] for w, i in zip(which, index, strict=True)], dtype=np.int64)
    return gather(segments, which, start, length, state.obs_dim, state.act_dim)


def windows(
    state: StoreState, length: int, stride: int, limit: int, split: str, held_out_fraction: float,
    held_out_block_steps: int | None,
) -> dict[str, np.ndarray]:
    """The newest ``limit`` of every ``stride``-th window of a part (see ``ReplayStore.windows``)."""
    segments = [s.segments_view() for s in state.ordered()]
    picked = [strided_starts(starts, stride)
              for starts in _part_starts(state, segments, length, split, held_out_fraction, held_out_block_steps)]
    # Streams in store order (oldest session first), rows ascending: the newest windows are the last.
    which = np.concatenate([np.full(len(starts), i, dtype=np.int64) for i, starts in enumerate(picked)])[-limit:]
    start = np.concatenate(picked)[-limit:]
    return gather(segments, which, start, length, state.obs_dim, state.act_dim)


def _part_starts(state: StoreState, segments: list, length: int, split: str, held_out_fraction: float,
                 held_out_block_steps: int | None) -> list[np.ndarray]:
    """Per stream, the starts of its ``length``-row windows inside ``split``; NotEnoughDataError when none has one."""
    streams = state.ordered()
    windows = [part_windows(seg, s.robot_id, s.session_id, length, split, held_out_fraction, held_out_block_steps)
               for s, seg in zip(streams, segments, strict=True)]
    if not any(len(w.starts) for w in windows):
        steps = sum(w.steps for w in windows)
        raise NotEnoughDataError(
            f"cannot sample {split} sequences of length {length}: no {length} consecutive {split} steps "
            f"({steps} {split} steps in {len(streams)} sessions, held_out_fraction {held_out_fraction}); "
            "record more data or ask for shorter sequences"
        )
    return [w.starts for w in windows]


def split_stats(state: StoreState, length: int, held_out_fraction: float,
                held_out_block_steps: int | None) -> dict[str, SplitStats]:
    """Windows, blocks and steps of each part (see ``ReplayStore.split_stats``)."""
    out = {}
    for part in ("train", "held_out"):
        windows = [part_windows(s.segments_view(), s.robot_id, s.session_id, length, part, held_out_fraction,
                                held_out_block_steps) for s in state.ordered()]
        out[part] = SplitStats(sum(len(w.starts) for w in windows), sum(w.blocks for w in windows),
                               sum(w.steps for w in windows))
    return out


def iter_steps(
    state: StoreState, robot_id: str | None, session_id: str | None
) -> Iterator[tuple[SessionInfo, dict[str, np.ndarray]]]:
    """Stored rows one chunk at a time (see ``ReplayStore.iter_steps``)."""
    infos = {(i.robot_id, i.session_id): i for i in sessions(state)}
    for s in state.ordered():
        if robot_id not in (None, s.robot_id) or session_id not in (None, s.session_id):
            continue
        for rows in s.segments_view().arrays:
            flags = rows["flags"]
            yield (
                infos[(s.robot_id, s.session_id)],
                {
                    "seq": np.array(rows["seq"]),
                    "stamp": np.array(rows["stamp"]),
                    "policy_version": np.array(rows["policy_version"]),
                    "obs": np.array(rows["obs"]),
                    "action": np.array(rows["action"]),
                    "reward": np.array(rows["reward"]),
                    "is_first": (flags & (FIRST | RESET)) != 0,
                    "is_last": (flags & LAST) != 0,
                    "is_terminal": (flags & TERMINAL) != 0,
                },
            )


def sessions(state: StoreState) -> list[SessionInfo]:
    """Every session ever recorded (evicted ones too), in store order."""
    return [
        SessionInfo.from_summary(s.robot_id, s.session_id, fold(s.sealed, s.open_view()), s.num_rows, s.duplicates)
        for s in state.ordered()
    ]


def stats(state: StoreState) -> dict[str, int]:
    """Store-wide counters (see docs/replay.md for each key); every value is an int."""
    infos = sessions(state)
    streams = state.streams.values()
    damage = state.damage
    return {
        "steps": state.num_steps,
        "total_steps": sum(i.steps for i in infos),
        "sessions": len(infos),
        "episodes": sum(i.episodes for i in infos),
        "duplicates": sum(s.duplicates for s in streams),
        "gaps": sum(i.gaps for i in infos),
        "evicted_steps": sum(s.evicted.steps for s in streams),
        "chunks": sum(len(s.chunks) for s in streams),
        "pending_steps": sum(s.n_open - s.n_durable for s in streams),
        "disk_bytes": state.disk_bytes,
        "memory_bytes": state.held_bytes() + sum(s.open_rows.nbytes for s in streams if s.open_rows is not None),
        "damaged_files": len(damage.reported),
        "torn_records": damage.torn_records,
        "damaged_records": damage.damaged_records,
        "quarantine_files": len(damage.set_aside),
    }
