"""What a store process holds in memory: each stream's chunks and open rows, and store-wide counters.

The writer (``writer.py``), recovery from disk (``recovery.py``) and the read side
(``reader.py``) all work on one ``StoreState``; the ``ReplayStore`` facade owns it and
serialises every call.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chunk import TailHeader, record_dtype
from .errors import ReplayWarning
from .layout import SESSIONS, chunk_name, tail_name
from .sampler import Segments
from .sessions import Summary


@dataclass
class Chunk:
    """A sealed chunk as held by this process."""

    index: int
    serial: int  # store-wide sealing order, for oldest-first eviction
    rows: np.ndarray
    path: Path
    nbytes: int
    in_memory: bool


@dataclass
class Stream:
    """One (robot_id, session_id) stream: its sealed chunks, open rows and counters."""

    robot_id: str
    session_id: str
    directory: Path
    created: float
    chunks: list[Chunk] = field(default_factory=list)
    sealed: Summary = field(default_factory=Summary)  # evicted rows + sealed chunks, folded
    open_rows: np.ndarray | None = None  # buffer of the open chunk (writer) or its rows (reader)
    n_open: int = 0
    n_durable: int = 0  # open rows already in the tail file
    open_index: int = 0
    tail_fd: int | None = None
    tail_size: int = 0
    next_seq: int | None = None
    after_last: bool = False
    duplicates: int = 0
    evicted: Summary = field(default_factory=Summary)  # rows of evicted chunks, folded (as in meta.json)
    evicted_chunks: int = 0
    segments: Segments | None = None  # cache for sampling; None when stale

    @property
    def num_rows(self) -> int:
        return sum(len(c.rows) for c in self.chunks) + self.n_open

    def open_view(self) -> np.ndarray:
        return self.open_rows[: self.n_open]

    def tail_path(self, index: int) -> Path:
        return self.directory / tail_name(index)

    def chunk_path(self, index: int) -> Path:
        return self.directory / chunk_name(index)

    def segments_view(self) -> Segments:
        """The rows in order as the sampler sees them (cached until the stream changes)."""
        if self.segments is None:
            arrays = [c.rows for c in self.chunks] + ([self.open_view()] if self.n_open else [])
            self.segments = Segments(arrays, np.cumsum([len(a) for a in arrays], dtype=np.int64))
        return self.segments


@dataclass
class Damage:
    """What this process found damaged on disk (reported by ``stats()``)."""

    reported: set[Path] = field(default_factory=set)  # files warned about
    torn_records: int = 0  # incomplete records at the end of a tail (a crash mid-append)
    damaged_records: int = 0  # complete tail records whose CRC or seq order failed
    set_aside: set[Path] = field(default_factory=set)  # *.quarantine (and older *.corrupt) files seen


@dataclass
class StoreState:
    """Everything one store process knows; see the module docstring."""

    directory: Path
    readonly: bool
    obs_dim: int
    act_dim: int
    chunk_length: int
    memory_budget_bytes: int | None
    streams: dict[tuple[str, str], Stream] = field(default_factory=dict)
    by_dir: dict[str, Stream] = field(default_factory=dict)
    damage: Damage = field(default_factory=Damage)
    next_serial: int = 0

    def __post_init__(self) -> None:
        self.dtype = record_dtype(self.obs_dim, self.act_dim)

    @property
    def dims(self) -> tuple[int, int]:
        return self.obs_dim, self.act_dim

    @property
    def sessions_dir(self) -> Path:
        return self.directory / SESSIONS

    def add_stream(self, stream: Stream) -> None:
        self.streams[(stream.robot_id, stream.session_id)] = stream
        self.by_dir[stream.directory.name] = stream

    def tail_header(self, s: Stream) -> TailHeader:
        return TailHeader(
            robot_id=s.robot_id, session_id=s.session_id, chunk_index=s.open_index,
            obs_dim=self.obs_dim, act_dim=self.act_dim,
        )

    def ordered(self) -> list[Stream]:
        """Streams in store order: by creation time, then ids."""
        return sorted(self.streams.values(), key=lambda s: (s.created, s.robot_id, s.session_id))

    def held_bytes(self) -> int:
        """Bytes of sealed chunk rows held in memory (not memory-mapped)."""
        return sum(c.nbytes for s in self.streams.values() for c in s.chunks if c.in_memory)

    def recorded(self) -> int:
        """Steps ever stored (evicted ones too): grows by exactly the newly loaded rows."""
        return sum(s.sealed.steps + s.n_open for s in self.streams.values())

    @property
    def num_steps(self) -> int:
        return sum(s.num_rows for s in self.streams.values())

    @property
    def disk_bytes(self) -> int:
        return sum(sum(c.nbytes for c in s.chunks) + s.tail_size for s in self.streams.values())

    def warn(self, path: Path, message: str) -> None:
        """One ReplayWarning per damaged file per process."""
        if path not in self.damage.reported:
            self.damage.reported.add(path)
            warnings.warn(f"replay store: {message}", ReplayWarning, stacklevel=4)
