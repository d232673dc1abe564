"""The durable replay store: every transition of every session, kept across crashes and days.

Layout of a store directory::

    store.json                         format version, obs_dim, act_dim, chunk_length
    writer.lock                        flock'd by the one writer; holds its pid
    sessions/<robot>--<session>--<hash>/
        meta.json                      robot_id, session_id, created, evicted_chunks, evicted summary, crc32
        chunk-00000000.rpc ...         sealed chunks (written atomically, CRC32 over the payload)
        tail-00000001.rpt              the open chunk's durable rows (CRC32 per record)

See docs/replay.md for the durability guarantees and the recovery rules.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dreamer_core.io import atomic_write, fsync_dir, write_all

from .chunk import (
    CHUNK_MAGIC,
    FIRST,
    FORMAT_VERSION,
    LAST,
    RESET,
    TAIL_MAGIC,
    TERMINAL,
    CorruptFileError,
    create_tail,
    decode_header,
    read_chunk,
    read_tail,
    record_crcs,
    record_dtype,
    tail_bytes,
    write_chunk,
)
from .records import AddResult, Transition, check_ids, checked_scalars, checked_vector
from .sampler import Segments, draw_starts, gather
from .sessions import SessionInfo, Summary, fold, read_meta, write_meta

_CHUNK_RE = re.compile(r"^chunk-(\d{8,})\.rpc$")
_TAIL_RE = re.compile(r"^tail-(\d{8,})\.rpt$")
_ANY_INDEX_RE = re.compile(r"^(?:chunk|tail)-(\d{8,})\.")


class ReplayStoreError(Exception):
    """A store cannot be opened or used as asked (the message says why and what to do)."""


class ReplayWriteError(ReplayStoreError, OSError):
    """Writing to disk failed (e.g. disk full). Data already durable is intact; rows not yet
    durable stay in memory and are written by the next successful flush."""


class ReplayWarning(RuntimeWarning):
    """Something on disk was damaged and skipped or cut (the message names the file)."""


def _locked(method: Callable) -> Callable:
    """Serialise calls: a node may add from a subscription and flush from a timer thread."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._mutex:
            return method(self, *args, **kwargs)

    return wrapper


def _session_meta(robot_id: str, session_id: str, created: float, evicted_chunks: int, evicted: Summary) -> dict:
    """Content of a session's meta.json."""
    return {
        "format_version": FORMAT_VERSION,
        "robot_id": robot_id,
        "session_id": session_id,
        "created": created,
        "evicted_chunks": evicted_chunks,
        "evicted": evicted.to_dict(),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:40]


@dataclass
class _Chunk:
    """A sealed chunk as held by this process."""

    index: int
    serial: int  # store-wide sealing order, for oldest-first eviction
    rows: np.ndarray
    path: Path
    nbytes: int
    in_memory: bool


@dataclass
class _Stream:
    """One (robot_id, session_id) stream: its sealed chunks, open rows and counters."""

    robot_id: str
    session_id: str
    directory: Path
    created: float
    chunks: list[_Chunk] = field(default_factory=list)
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
        return self.directory / f"tail-{index:08d}.rpt"

    def chunk_path(self, index: int) -> Path:
        return self.directory / f"chunk-{index:08d}.rpc"


class ReplayStore:
    """Durable, crash-safe replay of transitions, per (robot_id, session_id) stream.

    One writer per directory (a second gets a ReplayStoreError naming the holder's pid);
    any number of ``readonly`` readers, which see newly sealed chunks and durable tail
    rows after ``refresh()``.

    Args:
        directory: the store; created by a writer when missing.
        obs_dim, act_dim: sizes of obs and action; required to create a store, read from
            ``store.json`` otherwise (a different value is an error).
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
        self.durability_interval = durability_interval
        self.capacity_steps = capacity_steps
        self.capacity_bytes = capacity_bytes
        self.memory_budget_bytes = memory_budget_bytes
        self._progress = progress
        self._lock_fd: int | None = None
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._by_dir: dict[str, _Stream] = {}
        self._reported: set[Path] = set()  # damaged files already warned about
        self._torn_records = 0
        self._next_serial = 0
        self._last_flush = time.monotonic()
        self._closed = False
        self._mutex = threading.RLock()
        if not readonly:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock()
        try:
            self.obs_dim, self.act_dim = self._open_meta(obs_dim, act_dim)
            self._dtype = record_dtype(self.obs_dim, self.act_dim)
            if not readonly:
                (self.directory / "sessions").mkdir(exist_ok=True)
            self._load(initial=True)
            if not readonly:
                self._evict()  # the capacity may be lower than in the last run
        except BaseException:
            self._unlock()
            raise

    # ----------------------------------------------------------------- opening

    def _lock(self) -> None:
        path = self.directory / "writer.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ReplayStoreError(
                f"replay store {self.directory} is already open for writing by pid {holder} "
                f"(lock {path}); close that writer first, or open with readonly=True"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _open_meta(self, obs_dim: int | None, act_dim: int | None) -> tuple[int, int]:
        path = self.directory / "store.json"
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
            meta = {
                "format": "dreamer-replay",
                "format_version": FORMAT_VERSION,
                "obs_dim": obs_dim,
                "act_dim": act_dim,
                "chunk_length": self.chunk_length,
            }
            atomic_write(path, json.dumps(meta, indent=1).encode())
            return obs_dim, act_dim
        try:
            meta = json.loads(path.read_text())
            stored = int(meta["obs_dim"]), int(meta["act_dim"])
            version = meta["format_version"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ReplayStoreError(
                f"{path} is damaged ({exc!r}); it must hold obs_dim, act_dim and format_version"
            ) from None
        if version != FORMAT_VERSION:
            raise ReplayStoreError(f"{path}: format version {version} is not supported (expected {FORMAT_VERSION})")
        for name, asked, have in (("obs_dim", obs_dim, stored[0]), ("act_dim", act_dim, stored[1])):
            if asked is not None and asked != have:
                raise ReplayStoreError(
                    f"{name}={asked} does not match replay store {self.directory}, "
                    f"which holds {name}={have}; "
                    "use another directory for a different observation/action layout"
                )
        return stored

    def _warn(self, path: Path, message: str) -> None:
        if path not in self._reported:
            self._reported.add(path)
            warnings.warn(f"replay store: {message}", ReplayWarning, stacklevel=3)

    def _load(self, initial: bool = False) -> int:
        """Bring memory in line with the disk; returns the number of new rows."""
        root = self.directory / "sessions"
        dirs = sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []
        before = self._recorded()
        todo = [self._by_dir.get(p.name) or p for p in dirs]
        show = self._progress and initial and len(dirs) > 1
        for item in tqdm(todo, desc="loading replay sessions", unit="session", disable=not show):
            stream = item if isinstance(item, _Stream) else self._discover(item)
            if stream is not None:
                for _attempt in range(5):
                    if self._sync(stream):
                        break
        return self._recorded() - before

    def _recorded(self) -> int:
        """Steps ever stored (evicted ones too): grows by exactly the newly loaded rows."""
        return sum(s.sealed.steps + s.n_open for s in self._streams.values())

    def _discover(self, directory: Path) -> _Stream | None:
        meta_path = directory / "meta.json"
        try:
            meta = read_meta(meta_path)
            robot_id, session_id = str(meta["robot_id"]), str(meta["session_id"])
            created = float(meta["created"])
        except FileNotFoundError:
            if self.readonly:
                return None  # a writer is creating it right now
            identity = self._identify(directory)
            if identity is None:
                return None
            robot_id, session_id, created = identity
        except (ValueError, KeyError, TypeError):
            identity = self._identify(directory)
            self._warn(meta_path, f"{meta_path} is damaged; session identity taken from its data files")
            if identity is None:
                return None
            robot_id, session_id, created = identity
        stream = _Stream(robot_id, session_id, directory, created)
        if (robot_id, session_id) in self._streams:
            self._warn(directory, f"{directory} repeats session {robot_id}/{session_id}; skipped")
            return None
        self._streams[(robot_id, session_id)] = stream
        self._by_dir[directory.name] = stream
        return stream

    def _identify(self, directory: Path) -> tuple[str, str, float] | None:
        """(robot_id, session_id, created) from the first readable data file header; the writer
        rewrites meta.json from it (the evicted-data summary, if any, is lost with meta.json)."""
        for path in sorted(directory.iterdir()):
            magic = CHUNK_MAGIC if _CHUNK_RE.match(path.name) else TAIL_MAGIC if _TAIL_RE.match(path.name) else None
            if magic is None:
                continue
            try:
                with open(path, "rb") as f:
                    header, _ = decode_header(f.read(1 << 16), magic, path)
                robot_id, session_id = str(header["robot_id"]), str(header["session_id"])
            except (OSError, CorruptFileError, KeyError):
                continue
            created = directory.stat().st_mtime
            if not self.readonly:
                write_meta(directory / "meta.json", _session_meta(robot_id, session_id, created, 0, Summary()))
            return robot_id, session_id, created
        return None

    def _read_meta(self, stream: _Stream) -> dict:
        path = stream.directory / "meta.json"
        try:
            return read_meta(path)
        except (OSError, ValueError) as exc:
            self._warn(path, f"{path} unreadable ({exc}); keeping the evicted-data summary seen before")
            return {}

    def _quarantine(self, path: Path) -> None:
        """Writer only: rename a damaged file so it is kept for inspection but never loaded."""
        if not self.readonly:
            with contextlib.suppress(OSError):
                os.replace(path, path.with_name(path.name + ".corrupt"))

    def _sync(self, s: _Stream) -> bool:
        """Load what changed on disk for one stream; False when a file vanished mid-way (retry).

        Read order matters against a concurrent writer: tails before the chunk listing
        (a seal writes the chunk before deleting the tail), the listing before meta.json
        (an eviction updates meta.json before deleting the chunk).
        """
        names = sorted(os.listdir(s.directory))
        tails: list[tuple[int, np.ndarray, dict]] = []
        for name in names:
            match = _TAIL_RE.match(name)
            if not match:
                continue
            path = s.directory / name
            try:
                header, rows, dropped = read_tail(path, self._dtype)
            except FileNotFoundError:
                continue
            except CorruptFileError as exc:
                if not self.readonly:  # a reader may be looking at a tail being created right now
                    self._warn(path, f"{exc}; tail skipped")
                    self._quarantine(path)
                continue
            if (header.get("robot_id"), header.get("session_id")) != (s.robot_id, s.session_id):
                self._warn(path, f"{path} belongs to another session; skipped")
                self._quarantine(path)
                continue
            if dropped and not self.readonly:
                self._warn(path, f"{path}: cut a torn tail of {dropped} bytes after {len(rows)} good records")
                self._torn_records += -(-dropped // self._dtype.itemsize)
            tails.append((int(match.group(1)), rows, header))
        listing = sorted(os.listdir(s.directory))
        meta = self._read_meta(s)
        evicted_chunks = int(meta.get("evicted_chunks", s.evicted_chunks))
        first_load = not s.chunks and s.n_open == 0 and s.sealed.steps == 0
        chunk_indices = {int(m.group(1)): name for name in listing if (m := _CHUNK_RE.match(name))}
        kept = [c for c in s.chunks if c.index >= evicted_chunks and c.index in chunk_indices]
        if first_load or evicted_chunks != s.evicted_chunks:
            # Rows evicted since the last look may never have been loaded here: fold again from
            # the writer's summary of everything evicted.
            s.evicted = Summary.from_dict(meta.get("evicted"))
            s.sealed = s.evicted
            for c in kept:
                s.sealed = fold(s.sealed, c.rows)
        s.chunks, s.evicted_chunks = kept, evicted_chunks
        last_index = max((c.index for c in s.chunks), default=-1)
        held = self._held_bytes()
        for index in sorted(chunk_indices):
            path = s.directory / chunk_indices[index]
            if index < evicted_chunks:
                if not self.readonly:  # an eviction was interrupted between meta.json and unlink
                    path.unlink(missing_ok=True)
                continue
            if index <= last_index or path in self._reported:
                continue
            try:
                mmap = self.memory_budget_bytes is not None and held >= self.memory_budget_bytes
                header, rows, nbytes = read_chunk(path, self._dtype, mmap=mmap)
                self._check_rows(path, header, rows, s)
            except FileNotFoundError:
                return False  # evicted meanwhile (meta.json already says so): look again
            except CorruptFileError as exc:
                self._warn(path, f"{exc}; chunk skipped")
                self._quarantine(path)
                continue
            serial = int(header.get("serial", 0))
            s.chunks.append(_Chunk(index, serial, rows, path, nbytes, not mmap))
            held += 0 if mmap else nbytes
            s.sealed = fold(s.sealed, rows)
            self._next_serial = max(self._next_serial, serial + 1)
            last_index = index
        # Open rows: durable tail records past the last sealed row, in seq order.
        last_seq = s.sealed.last_seq
        pieces = []
        for index, rows, _ in sorted(tails, key=lambda item: item[0]):
            if index <= last_index:
                if not self.readonly:  # its rows are in the sealed chunk of the same index
                    s.tail_path(index).unlink(missing_ok=True)
                continue
            seqs = rows["seq"].astype(np.int64)
            keep = seqs > (-1 if last_seq is None else last_seq)
            rows = rows[keep]
            disorder = np.flatnonzero(np.diff(rows["seq"].astype(np.int64)) <= 0)
            if len(disorder):
                cut = int(disorder[0]) + 1
                path = s.tail_path(index)
                self._warn(path, f"{path}: seq out of order at record {cut}; cut there")
                rows = rows[:cut]
            if len(rows):
                pieces.append(rows)
                last_seq = int(rows["seq"][-1])
        open_rows = np.concatenate(pieces) if pieces else np.empty(0, self._dtype)
        indices = [int(m.group(1)) for n in listing if (m := _ANY_INDEX_RE.match(n))]
        s.open_index = max([last_index + 1, evicted_chunks, *[i + 1 for i in indices]])
        if self.readonly:
            s.open_rows, s.n_open, s.n_durable = open_rows, len(open_rows), len(open_rows)
            s.tail_size = open_rows.nbytes  # approximate: excludes the tail header
        else:
            self._recover_open(s, open_rows, [i for i, _, _ in tails if i > last_index])
        s.next_seq = None if last_seq is None else last_seq + 1
        last_flags = (
            int(s.open_rows[s.n_open - 1]["flags"])
            if s.n_open
            else (int(s.chunks[-1].rows[-1]["flags"]) if s.chunks else 0)
        )
        s.after_last = bool(last_flags & LAST)
        s.segments = None
        return True

    def _check_rows(self, path: Path, header: dict, rows: np.ndarray, s: _Stream) -> None:
        if (header.get("robot_id"), header.get("session_id")) != (s.robot_id, s.session_id):
            owner = f"{header.get('robot_id')}/{header.get('session_id')}"
            raise CorruptFileError(f"{path}: belongs to session {owner}")
        seq = rows["seq"].astype(np.int64)
        if len(seq) == 0 or np.any(np.diff(seq) <= 0):
            raise CorruptFileError(f"{path}: rows empty or seq not increasing")
        if s.sealed.last_seq is not None and seq[0] <= s.sealed.last_seq:
            raise CorruptFileError(f"{path}: seq {seq[0]} overlaps rows already loaded (up to {s.sealed.last_seq})")

    def _recover_open(self, s: _Stream, rows: np.ndarray, tail_indices: list[int]) -> None:
        """Writer: rewrite the recovered open rows as one clean tail and reopen it for appending."""
        s.open_rows = np.zeros(max(self.chunk_length, len(rows)), self._dtype)
        s.open_rows[: len(rows)] = rows
        s.n_open = s.n_durable = len(rows)
        for index in tail_indices:
            s.tail_path(index).unlink(missing_ok=True)
        if len(rows):
            path = s.tail_path(s.open_index)
            atomic_write(path, tail_bytes(self._tail_header(s), rows))
            s.tail_fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            s.tail_size = path.stat().st_size
            if s.n_open >= self.chunk_length:
                self._seal(s)

    def _held_bytes(self) -> int:
        """Bytes of sealed chunk rows held in memory (not memory-mapped)."""
        return sum(c.nbytes for s in self._streams.values() for c in s.chunks if c.in_memory)

    # ----------------------------------------------------------------- writing

    def _check_writable(self) -> None:
        if self._closed:
            raise ReplayStoreError(f"replay store {self.directory} is closed")
        if self.readonly:
            raise ReplayStoreError(f"replay store {self.directory} is open readonly; open it as the writer to add")

    def _tail_header(self, s: _Stream) -> dict:
        return {
            "robot_id": s.robot_id,
            "session_id": s.session_id,
            "chunk_index": s.open_index,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
        }

    def _new_stream(self, robot_id: str, session_id: str) -> _Stream:
        digest = hashlib.sha1(f"{robot_id}\0{session_id}".encode()).hexdigest()[:8]
        directory = self.directory / "sessions" / f"{_slug(robot_id)}--{_slug(session_id)}--{digest}"
        s = _Stream(robot_id, session_id, directory, time.time())
        try:
            if directory.exists():  # left without readable identity by a crash: keep it aside, unused
                directory.rename(directory.with_name(f"{directory.name}.orphan-{time.time_ns()}"))
            directory.mkdir()
            write_meta(directory / "meta.json", _session_meta(robot_id, session_id, s.created, 0, Summary()))
            fsync_dir(directory.parent)
        except OSError as exc:
            raise self._write_error(directory / "meta.json", exc) from exc
        s.open_rows = np.zeros(self.chunk_length, self._dtype)
        self._streams[(robot_id, session_id)] = s
        self._by_dir[directory.name] = s
        return s

    def _write_error(self, path: Path, exc: OSError) -> ReplayWriteError:
        error = ReplayWriteError(
            exc.errno,
            f"replay store: writing {path} failed: {exc.strerror or exc}. Data already on disk is intact; "
            "transitions since the last flush are held in memory and will be retried on the next flush "
            "(free disk space or fix the device)",
        )
        error.filename = str(path)
        return error

    @_locked
    def add(self, t: Transition) -> AddResult:
        """Append one transition to its stream (dropped as a duplicate if its seq is not new).

        Invalid input (wrong size, NaN/inf, bad ids) raises ValueError and stores nothing.
        A ReplayWriteError means the transition is held but a flush or seal failed.
        """
        if self.readonly or self._closed:
            self._check_writable()
        seq, reward, version, stamp = checked_scalars(t)
        obs = checked_vector(t.obs, self.obs_dim, "obs")
        action = checked_vector(t.action, self.act_dim, "action")
        s = self._streams.get((t.robot_id, t.session_id))
        if s is None:
            check_ids(t.robot_id, t.session_id)
            s = self._new_stream(t.robot_id, t.session_id)
        if s.next_seq is not None and seq < s.next_seq:
            s.duplicates += 1
            return AddResult.DUPLICATE
        if s.n_open >= self.chunk_length:  # a previous seal failed; retry before growing past a chunk
            self._seal(s)
        gap = s.next_seq is not None and seq > s.next_seq
        flags = (
            FIRST * bool(t.is_first)
            | LAST * bool(t.is_last)
            | TERMINAL * bool(t.is_terminal)
            | RESET * (s.next_seq is None or gap or s.after_last)
        )
        s.open_rows[s.n_open] = (seq, stamp, version, reward, flags, obs, action, 0)
        s.n_open += 1
        s.next_seq, s.after_last = seq + 1, bool(t.is_last)
        s.segments = None
        if s.n_open >= self.chunk_length:
            self._seal(s)
        if time.monotonic() - self._last_flush >= self.durability_interval:
            self.flush()
        return AddResult.GAP if gap else AddResult.ADDED

    @_locked
    def maybe_flush(self) -> bool:
        """Flush when ``durability_interval`` has passed since the last flush; call it from a
        timer so an idle writer's rows become durable too. Returns whether it flushed."""
        if self.readonly or self._closed or time.monotonic() - self._last_flush < self.durability_interval:
            return False
        self.flush()
        return True

    @_locked
    def flush(self) -> None:
        """Make every stream's open rows durable now (append to the tail file and fsync)."""
        self._check_writable()
        for s in self._streams.values():
            if s.n_durable < s.n_open:
                self._flush_stream(s)
        self._last_flush = time.monotonic()

    def _flush_stream(self, s: _Stream) -> None:
        rows = s.open_rows[s.n_durable : s.n_open]
        rows["crc"] = record_crcs(rows)
        path = s.tail_path(s.open_index)
        try:
            if s.tail_fd is None:
                s.tail_fd, s.tail_size = create_tail(path, self._tail_header(s))
            write_all(s.tail_fd, rows.tobytes())
            os.fsync(s.tail_fd)
        except OSError as exc:
            if s.tail_fd is not None:  # drop a partial record so later appends stay readable
                with contextlib.suppress(OSError):
                    os.ftruncate(s.tail_fd, s.tail_size)
            raise self._write_error(path, exc) from exc
        s.tail_size += rows.nbytes
        s.n_durable = s.n_open

    def _seal(self, s: _Stream) -> None:
        rows = s.open_view()
        rows["crc"][s.n_durable :] = record_crcs(rows[s.n_durable :])
        path = s.chunk_path(s.open_index)
        header = {
            "robot_id": s.robot_id,
            "session_id": s.session_id,
            "chunk_index": s.open_index,
            "serial": self._next_serial,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "first_seq": int(rows["seq"][0]),
            "last_seq": int(rows["seq"][-1]),
        }
        try:
            nbytes = write_chunk(path, header, rows)
        except OSError as exc:
            raise self._write_error(path, exc) from exc
        if s.tail_fd is not None:
            os.close(s.tail_fd)
            s.tail_fd = None
        s.tail_path(s.open_index).unlink(missing_ok=True)
        sealed = rows.copy() if len(rows) < len(s.open_rows) else s.open_rows
        in_memory = self.memory_budget_bytes is None or self._held_bytes() < self.memory_budget_bytes
        if not in_memory:
            _, sealed, _ = read_chunk(path, self._dtype, mmap=True)
        s.chunks.append(_Chunk(s.open_index, self._next_serial, sealed, path, nbytes, in_memory))
        s.sealed = fold(s.sealed, sealed)
        self._next_serial += 1
        s.open_rows = np.zeros(self.chunk_length, self._dtype)
        s.n_open = s.n_durable = s.tail_size = 0
        s.open_index += 1
        s.segments = None
        self._evict()

    def _evict(self) -> None:
        """Delete the oldest sealed chunks (store-wide) while over a capacity limit."""
        while (self.capacity_steps is not None and self.num_steps > self.capacity_steps) or (
            self.capacity_bytes is not None and self.disk_bytes > self.capacity_bytes
        ):
            candidates = [s for s in self._streams.values() if s.chunks]
            if not candidates:
                return  # only open chunks left; they are never evicted
            s = min(candidates, key=lambda st: st.chunks[0].serial)
            chunk = s.chunks[0]
            evicted = fold(s.evicted, chunk.rows)
            meta = _session_meta(s.robot_id, s.session_id, s.created, chunk.index + 1, evicted)
            try:
                write_meta(s.directory / "meta.json", meta)
                chunk.path.unlink()
                fsync_dir(s.directory)
            except OSError as exc:
                raise self._write_error(chunk.path, exc) from exc
            s.chunks.pop(0)
            s.evicted_chunks = chunk.index + 1
            s.evicted = evicted
            s.segments = None

    @_locked
    def close(self) -> None:
        """Flush, close files and release the writer lock (idempotent)."""
        if self._closed:
            return
        try:
            if not self.readonly:
                self.flush()
        finally:
            for s in self._streams.values():
                if s.tail_fd is not None:
                    os.close(s.tail_fd)
                    s.tail_fd = None
            self._unlock()
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
        return self._load()

    def _ordered(self) -> list[_Stream]:
        return sorted(self._streams.values(), key=lambda s: (s.created, s.robot_id, s.session_id))

    def _segments(self, s: _Stream) -> Segments:
        if s.segments is None:
            arrays = [c.rows for c in s.chunks] + ([s.open_view()] if s.n_open else [])
            s.segments = Segments(arrays, np.cumsum([len(a) for a in arrays], dtype=np.int64))
        return s.segments

    @_locked
    def sample(
        self,
        batch_size: int,
        length: int,
        *,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        recency: float = 0.0,
    ) -> dict[str, np.ndarray]:
        """Draw ``batch_size`` sequences of ``length`` contiguous steps, each from one session.

        Returns obs [B,T,O] float32, action [B,T,A] float32, reward [B,T] float32 and
        is_first/is_last/is_terminal [B,T] bool. ``is_first`` is set where an episode
        starts inside a sequence and always at t=0 (the learner resets its state there).
        ``recency`` in [0, 1] is the share of sequences drawn with a bias to new data
        (see ``dreamer_core.storage.sampler``). Same seed and same data give the same batch.
        """
        if batch_size < 1 or length < 1:
            raise ValueError(f"batch_size and length must be >= 1, got {batch_size} and {length}")
        if not 0.0 <= recency <= 1.0:
            raise ValueError(f"recency must be in [0, 1], got {recency}")
        if seed is not None and rng is not None:
            raise ValueError("pass either seed or rng, not both")
        rng = rng if rng is not None else np.random.default_rng(seed)
        streams = self._ordered()
        segments = [self._segments(s) for s in streams]
        sizes = np.array([seg.size for seg in segments], dtype=np.int64)
        which, start = draw_starts(sizes, batch_size, length, rng, recency)
        return gather(segments, which, start, length, self.obs_dim, self.act_dim)

    def iter_steps(
        self, robot_id: str | None = None, session_id: str | None = None
    ) -> Iterator[tuple[SessionInfo, dict[str, np.ndarray]]]:
        """Stored rows, one chunk at a time, as (session, columns) with columns seq, stamp,
        policy_version, obs, action, reward, is_first, is_last, is_terminal; sessions in
        store order, optionally only those matching ``robot_id``/``session_id``."""
        infos = {(i.robot_id, i.session_id): i for i in self.sessions()}
        for s in self._ordered():
            if robot_id not in (None, s.robot_id) or session_id not in (None, s.session_id):
                continue
            for rows in self._segments(s).arrays:
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

    @property
    def num_steps(self) -> int:
        """Steps currently stored (after eviction), durable or not."""
        return sum(s.num_rows for s in self._streams.values())

    @property
    def disk_bytes(self) -> int:
        """Bytes of chunk and tail files (as tracked; excludes metadata files)."""
        return sum(sum(c.nbytes for c in s.chunks) + s.tail_size for s in self._streams.values())

    @_locked
    def sessions(self) -> list[SessionInfo]:
        """Every session ever recorded (evicted ones too), in store order."""
        return [
            SessionInfo.from_summary(s.robot_id, s.session_id, fold(s.sealed, s.open_view()), s.num_rows, s.duplicates)
            for s in self._ordered()
        ]

    @_locked
    def stats(self) -> dict:
        """Store-wide counters (see docs/replay.md for each key)."""
        infos = self.sessions()
        streams = self._streams.values()
        return {
            "steps": self.num_steps,
            "total_steps": sum(i.steps for i in infos),
            "sessions": len(infos),
            "episodes": sum(i.episodes for i in infos),
            "duplicates": sum(s.duplicates for s in streams),
            "gaps": sum(i.gaps for i in infos),
            "evicted_steps": sum(s.evicted.steps for s in streams),
            "chunks": sum(len(s.chunks) for s in streams),
            "pending_steps": sum(s.n_open - s.n_durable for s in streams),
            "disk_bytes": self.disk_bytes,
            "memory_bytes": self._held_bytes() + sum(s.open_rows.nbytes for s in streams if s.open_rows is not None),
            "damaged_files": len(self._reported),
            "torn_records": self._torn_records,
        }
