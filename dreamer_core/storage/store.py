"""The durable replay store: every transition of every session, kept across crashes and days.

``ReplayStore`` is a facade over modules named by role:

- ``layout``: where files live in a store directory, and the one-writer lock;
- ``metadata``: store.json and meta.json, read with strict types;
- ``chunk``: the chunk and tail file format;
- ``streams``: what a store process holds in memory;
- ``recovery``: loading the disk into memory (writer open, reader refresh);
- ``writer``: append, flush, seal, evict;
- ``reader``: batches, rows, sessions and counters.

See docs/replay.md for the durability guarantees and the recovery rules.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from dreamer_core.spec import PolicySpec

from . import reader
from .errors import ReplayStoreError
from .held_out import check_block_steps, check_fraction
from .layout import STORE_JSON, WriterLock
from .metadata import StoreMeta, read_store_meta, write_store_meta
from .records import AddResult, Transition
from .recovery import Recovery
from .sampler import SplitStats
from .sessions import SessionInfo
from .streams import StoreState
from .writer import Writer


def _locked(method: Callable) -> Callable:
    """Serialise calls: a node may add from a subscription and flush from a timer thread."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._mutex:
            return method(self, *args, **kwargs)

    return wrapper


class ReplayStore:
    """Durable, crash-safe replay of transitions, per (robot_id, session_id) stream.

    One writer per directory (a second gets a ReplayStoreError naming the holder's pid);
    any number of ``readonly`` readers, which see newly sealed chunks and durable tail
    rows after ``refresh()``. Every error is a ``ReplayStoreError`` (see ``errors``),
    except invalid arguments (``ValueError``) and ``sample`` without enough data
    (``NotEnoughDataError``).

    Args:
        directory: the store; created by a writer when missing.
        obs_dim, act_dim: sizes of obs and action; required to create a store (or taken
            from ``spec``), read from ``store.json`` otherwise (a different value is an error).
        spec: the robot's ``PolicySpec``; a writer creating the store keeps it in
            ``store.json`` (``ReplayStore.spec``), and a writer reopening a store that holds
            one must pass the same spec or none.
        chunk_length: rows per sealed chunk file.
        durability_interval: seconds; ``add``/``maybe_flush`` fsync the open tails at least
            this often, so a crash loses at most this much (0: every add).
        capacity_steps, capacity_bytes: evict the oldest sealed chunks beyond these.
        readonly: open as a reader (no lock, never changes a file).
        memory_budget_bytes: sealed chunks beyond this many bytes are memory-mapped
            instead of held in memory (None: hold everything).
        progress: show a progress bar while loading many chunks.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        obs_dim: int | None = None,
        act_dim: int | None = None,
        spec: PolicySpec | None = None,
        chunk_length: int = 1024,
        durability_interval: float = 1.0,
        capacity_steps: int | None = None,
        capacity_bytes: int | None = None,
        readonly: bool = False,
        memory_budget_bytes: int | None = None,
        progress: bool = False,
    ):
        if chunk_length < 1:
            raise ValueError(f"chunk_length must be >= 1, got {chunk_length}")
        if durability_interval < 0:
            raise ValueError(f"durability_interval must be >= 0 seconds, got {durability_interval}")
        for name, value in (("capacity_steps", capacity_steps), ("capacity_bytes", capacity_bytes)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive or None, got {value}")
        self.directory = Path(directory)
        self.readonly = readonly
        self.chunk_length = chunk_length
        self._lock: WriterLock | None = None
        self._writer: Writer | None = None
        self._closed = False
        self._mutex = threading.RLock()
        try:
            if not readonly:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._lock = WriterLock(self.directory)
            meta, self.spec = self._open_meta(obs_dim, act_dim, spec)
            self.obs_dim, self.act_dim = meta.obs_dim, meta.act_dim
            self._state = StoreState(self.directory, readonly, meta.obs_dim, meta.act_dim, chunk_length,
                                     memory_budget_bytes)
            if not readonly:
                self._state.sessions_dir.mkdir(exist_ok=True)
            self._recovery = Recovery(self._state, progress)
            self._recovery.load(initial=True)
            if not readonly:
                self._writer = Writer(self._state, durability_interval, capacity_steps, capacity_bytes)
                self._writer.evict()  # the capacity may be lower than in the last run
        except BaseException as exc:
            if self._writer is not None:
                self._writer.close_files()
            if self._lock is not None:
                self._lock.release()
            if isinstance(exc, OSError) and not isinstance(exc, ReplayStoreError):
                raise self._os_error(exc) from None
            raise

    # ----------------------------------------------------------------- opening

    def _os_error(self, exc: OSError) -> ReplayStoreError:
        where = exc.filename or self.directory
        if self.readonly:
            todo = "check the path and that this user may read it"
        else:
            todo = "the writer needs write access to the whole store: fix the permissions, or open it readonly=True"
        return ReplayStoreError(f"cannot open replay store {self.directory}: {exc.strerror or exc} ({where}); {todo}")

    def _open_meta(
        self, obs_dim: int | None, act_dim: int | None, spec: PolicySpec | None
    ) -> tuple[StoreMeta, PolicySpec | None]:
        path = self.directory / STORE_JSON
        if spec is not None:
            obs_dim = spec.obs_dim if obs_dim is None else obs_dim
            act_dim = spec.act_dim if act_dim is None else act_dim
            if (obs_dim, act_dim) != (spec.obs_dim, spec.act_dim):
                raise ReplayStoreError(
                    f"obs_dim={obs_dim}, act_dim={act_dim} contradict the given spec "
                    f"({spec.obs_dim}, {spec.act_dim}); pass one or the other"
                )
        if not path.exists():
            if self.readonly:
                raise ReplayStoreError(
                    f"{self.directory} is not a replay store (no store.json); check the path, "
                    "or open it once as a writer with obs_dim and act_dim to create it"
                )
            if obs_dim is None or act_dim is None or obs_dim < 1 or act_dim < 1:
                raise ReplayStoreError(
                    f"creating replay store {self.directory} needs positive obs_dim and act_dim "
                    f"(got obs_dim={obs_dim}, act_dim={act_dim})"
                )
            meta = StoreMeta(
                obs_dim=obs_dim, act_dim=act_dim, chunk_length=self.chunk_length,
                spec=None if spec is None else spec.to_dict(), spec_hash=None if spec is None else spec.hash(),
            )
            write_store_meta(path, meta)
            return meta, spec
        meta, stored_spec = read_store_meta(path)
        for name, asked, have in (("obs_dim", obs_dim, meta.obs_dim), ("act_dim", act_dim, meta.act_dim)):
            if asked is not None and asked != have:
                raise ReplayStoreError(
                    f"{name}={asked} does not match replay store {self.directory}, "
                    f"which holds {name}={have}; "
                    "use another directory for a different observation/action layout"
                )
        if spec is not None and stored_spec is not None and spec.hash() != meta.spec_hash:
            raise ReplayStoreError(
                f"the policy spec given (hash {spec.hash()[:12]}) is not the one replay store {self.directory} "
                f"was created with (hash {meta.spec_hash[:12]}, robot {stored_spec.robot_id}): the same sizes but "
                "another observation/action meaning; use another directory for this robot config"
            )
        return meta, stored_spec

    # ----------------------------------------------------------------- writing

    def _check_writable(self) -> Writer:
        if self._closed:
            raise ReplayStoreError(f"replay store {self.directory} is closed")
        if self._writer is None:
            raise ReplayStoreError(f"replay store {self.directory} is open readonly; open it as the writer to add")
        return self._writer

    @_locked
    def add(self, t: Transition) -> AddResult:
        """Append one transition to its stream (dropped as a duplicate if its seq is not new).

        Invalid input (wrong size, NaN/inf, bad ids or seq) raises InvalidTransitionError (a
        ValueError) and stores nothing. A ReplayWriteError means the transition is held but
        a flush or seal failed.
        """
        return self._check_writable().add(t)

    @_locked
    def maybe_flush(self) -> bool:
        """Flush when ``durability_interval`` has passed since the last flush; call it from a
        timer so an idle writer's rows become durable too. Returns whether it flushed."""
        if self._closed or self._writer is None:
            return False
        return self._writer.maybe_flush()

    @_locked
    def flush(self) -> None:
        """Make every stream's open rows durable now (append to the tail file and fsync)."""
        self._check_writable().flush()

    @_locked
    def close(self) -> None:
        """Flush, close files and release the writer lock (idempotent)."""
        if self._closed:
            return
        try:
            if self._writer is not None:
                self._writer.flush()
        finally:
            if self._writer is not None:
                self._writer.close_files()
            if self._lock is not None:
                self._lock.release()
            self._closed = True

    def __enter__(self) -> ReplayStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- reading

    @_locked
    def refresh(self) -> int:
        """Reader: load chunks sealed and tail rows made durable by the writer since the last
        call (and forget evicted chunks); returns the number of new steps (not net of eviction)."""
        if self._closed:
            raise ReplayStoreError(f"replay store {self.directory} is closed")
        if not self.readonly:
            return 0  # the writer's memory is the store
        try:
            return self._recovery.load()
        except OSError as exc:
            raise self._os_error(exc) from None

    @_locked
    def next_seq(self, robot_id: str, session_id: str) -> int | None:
        """The seq a stream expects next (one above its highest stored seq); None for a stream
        this store holds no row of. Seqs below it are dropped by ``add`` as duplicates."""
        s = self._state.streams.get((robot_id, session_id))
        return None if s is None else s.next_seq

    @_locked
    def sample(
        self,
        batch_size: int,
        length: int,
        *,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        recency: float = 0.0,
        split: Literal["all", "train", "held_out"] = "all",
        held_out_fraction: float | None = None,
        held_out_block_steps: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Draw ``batch_size`` sequences of ``length`` contiguous steps, each from one session.

        Returns obs [B,T,O] float32, action [B,T,A] float32, reward [B,T] float32 and
        is_first/is_last/is_terminal [B,T] bool. ``is_first`` is set where an episode
        starts inside a sequence and always at t=0 (the learner resets its state there).
        ``recency`` in [0, 1] is the share of sequences drawn with a bias to new data
        (see ``dreamer_core.storage.sampler``). Same seed and same data give the same batch.

        ``split``: ``"all"`` draws from every row; ``"train"`` only from rows of blocks that
        are not held out, ``"held_out"`` only from held-out blocks, by the rule of
        ``dreamer_core.storage.held_out`` with ``held_out_fraction`` (required for them) and
        ``held_out_block_steps`` (None: a block is a whole episode).
        """
        if batch_size < 1 or length < 1:
            raise ValueError(f"batch_size and length must be >= 1, got {batch_size} and {length}")
        if not 0.0 <= recency <= 1.0:
            raise ValueError(f"recency must be in [0, 1], got {recency}")
        if seed is not None and rng is not None:
            raise ValueError("pass either seed or rng, not both")
        fraction = self._split_fraction(split, held_out_fraction)
        rng = rng if rng is not None else np.random.default_rng(seed)
        return reader.sample(self._state, batch_size, length, rng, recency, split, fraction,
                             check_block_steps(held_out_block_steps))

    @_locked
    def windows(
        self,
        length: int,
        *,
        stride: int,
        limit: int,
        split: Literal["train", "held_out"],
        held_out_fraction: float,
        held_out_block_steps: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Fixed windows instead of a draw: every ``stride``-th ``length``-step window lying wholly in
        ``split`` (counted from the first window of each run of consecutive ones), the newest ``limit``
        of them, as a batch like ``sample``'s. The same rows always give the same batch; it holds
        fewer than ``limit`` windows when the part has fewer (``NotEnoughDataError`` when none)."""
        if length < 1 or stride < 1 or limit < 1:
            raise ValueError(f"length, stride and limit must be >= 1, got {length}, {stride} and {limit}")
        if split not in ("train", "held_out"):
            raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
        return reader.windows(self._state, length, stride, limit, split,
                              self._split_fraction(split, held_out_fraction), check_block_steps(held_out_block_steps))

    @staticmethod
    def _split_fraction(split: str, held_out_fraction: float | None) -> float:
        if split not in ("all", "train", "held_out"):
            raise ValueError(f"split must be 'all', 'train' or 'held_out', got {split!r}")
        if split == "all":
            return 0.0
        if held_out_fraction is None:
            raise ValueError(f"split={split!r} needs held_out_fraction (the learner's trust.held_out_fraction)")
        return check_fraction(held_out_fraction)

    @_locked
    def split_stats(self, length: int, held_out_fraction: float,
                    held_out_block_steps: int | None = None) -> dict[str, SplitStats]:
        """For ``"train"`` and ``"held_out"``: how many ``length``-step windows ``sample`` can draw
        from that part, how many blocks they start in and how many rows the part holds."""
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        return reader.split_stats(self._state, length, check_fraction(held_out_fraction),
                                  check_block_steps(held_out_block_steps))

    def iter_steps(
        self, robot_id: str | None = None, session_id: str | None = None
    ) -> Iterator[tuple[SessionInfo, dict[str, np.ndarray]]]:
        """Stored rows, one chunk at a time, as (session, columns) with columns seq, stamp,
        policy_version, obs, action, reward, is_first, is_last, is_terminal; sessions in
        store order, optionally only those matching ``robot_id``/``session_id``."""
        return reader.iter_steps(self._state, robot_id, session_id)

    @property
    def num_steps(self) -> int:
        """Steps currently stored (after eviction), durable or not."""
        return self._state.num_steps

    @property
    def disk_bytes(self) -> int:
        """Bytes of chunk and tail files (as tracked; excludes metadata files)."""
        return self._state.disk_bytes

    @_locked
    def sessions(self) -> list[SessionInfo]:
        """Every session ever recorded (evicted ones too), in store order."""
        return reader.sessions(self._state)

    @_locked
    def stats(self) -> dict[str, int]:
        """Store-wide counters (see docs/replay.md for each key)."""
        return reader.stats(self._state)
