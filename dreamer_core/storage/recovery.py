"""Bringing memory in line with the disk: the writer's recovery on open and a reader's refresh.

The rule is that nothing is deleted unless it is proven to be garbage:

- A tail file is deleted only when every complete record in it is intact and is either
  carried into the rewritten tail or present in a loaded chunk or the evicted summary.
  Otherwise the writer keeps it as ``tail-….rpt.quarantine`` (damaged bytes and all) after
  writing the intact records into a new tail. An incomplete last record (a crash
  mid-append) is not kept: it was never fsynced whole, so no caller was told it was durable.
- A damaged chunk, a file of another session or of other obs/act sizes, and a
  ``meta.json`` failing its checksum are renamed to ``*.quarantine``, never deleted.
- A chunk below a session's ``evicted_chunks`` (an eviction interrupted between its
  ``meta.json`` update and the unlink) is deleted only when the evicted summary covers its
  rows; otherwise ``meta.json`` contradicts the data and the store refuses to open.

A reader applies the same rules in memory and never changes a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dreamer_core.io import atomic_write, fsync_dir

from .chunk import (
    CHUNK_MAGIC,
    LAST,
    RESET,
    TAIL_MAGIC,
    ChunkHeader,
    TailHeader,
    TailScan,
    decode_header,
    read_chunk,
    read_chunk_header,
    read_tail,
    record_crcs,
    tail_bytes,
)
from .errors import CorruptFileError, MetadataError, ReplayWriteError, write_error
from .layout import ANY_INDEX_RE, CHUNK_RE, META_JSON, TAIL_RE, is_set_aside, quarantine_path
from .metadata import SessionMeta, read_session_meta, write_session_meta
from .sessions import Summary, fold
from .streams import Chunk, StoreState, Stream


class Recovery:
    """Loads what is on disk into a ``StoreState`` (see the module docstring for the rules)."""

    def __init__(self, state: StoreState, progress: bool = False):
        self.state = state
        self.progress = progress

    @property
    def _writer(self) -> bool:
        return not self.state.readonly

    def load(self, initial: bool = False) -> int:
        """Bring memory in line with the disk; returns the number of new rows."""
        root = self.state.sessions_dir
        dirs = sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []
        before = self.state.recorded()
        todo = [self.state.by_dir.get(p.name) or p for p in dirs]
        show = self.progress and initial and len(dirs) > 1
        for item in tqdm(todo, desc="loading replay sessions", unit="session", disable=not show):
            stream = item if isinstance(item, Stream) else self._discover(item)
            if stream is not None:
                for _attempt in range(5):
                    if self._sync(stream):
                        break
        return self.state.recorded() - before

    def set_aside(self, path: Path, message: str) -> None:
        """Warn about a damaged file; the writer renames it to ``*.quarantine`` (kept, never loaded)."""
        self.state.warn(path, message)
        if self._writer:
            target = quarantine_path(path)
            try:
                os.replace(path, target)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise write_error(target, exc) from exc
            self.state.damage.set_aside.add(target)

    # ----------------------------------------------------------------- session identity

    def _discover(self, directory: Path) -> Stream | None:
        meta_path = directory / META_JSON
        try:
            meta = read_session_meta(meta_path)
            identity = meta.robot_id, meta.session_id, meta.created
        except FileNotFoundError:
            if self.state.readonly:
                return None  # a writer is creating it right now
            identity = self._identify(directory)
        except CorruptFileError as exc:
            self.set_aside(meta_path, f"{exc}: meta.json is damaged; session identity taken from its data files")
            identity = self._identify(directory)
        if identity is None:
            return None
        robot_id, session_id, created = identity
        if (robot_id, session_id) in self.state.streams:
            self.state.warn(directory, f"{directory} repeats session {robot_id}/{session_id}; skipped")
            return None
        stream = Stream(robot_id, session_id, directory, created)
        self.state.add_stream(stream)
        return stream

    def _identify(self, directory: Path) -> tuple[str, str, float] | None:
        """(robot_id, session_id, created) from the first readable data file header; the writer
        rewrites meta.json from it (the evicted-data summary is lost with the old meta.json,
        which the writer kept as ``meta.json.quarantine``)."""
        for path in sorted(directory.iterdir()):
            if CHUNK_RE.match(path.name):
                magic, model = CHUNK_MAGIC, ChunkHeader
            elif TAIL_RE.match(path.name):
                magic, model = TAIL_MAGIC, TailHeader
            else:
                continue
            try:
                with open(path, "rb") as f:
                    header, _ = decode_header(f.read(1 << 16), magic, model, path, self.state.dims)
            except (OSError, CorruptFileError):
                continue
            created = directory.stat().st_mtime
            if self._writer:
                meta = SessionMeta(robot_id=header.robot_id, session_id=header.session_id, created=created)
                try:
                    write_session_meta(directory / META_JSON, meta)
                except OSError as exc:
                    raise write_error(directory / META_JSON, exc) from exc
            return header.robot_id, header.session_id, created
        return None

    def _session_meta(self, s: Stream) -> SessionMeta | None:
        path = s.directory / META_JSON
        try:
            return read_session_meta(path)
        except (OSError, CorruptFileError) as exc:
            self.state.warn(path, f"{path} unreadable ({exc}); keeping the evicted-data summary seen before")
            return None

    # ----------------------------------------------------------------- one stream

    def _sync(self, s: Stream) -> bool:
        """Load what changed on disk for one stream; False when a file vanished mid-way (retry).

        Read order matters against a concurrent writer: tails before the chunk listing
        (a seal writes the chunk before deleting the tail), the listing before meta.json
        (an eviction updates meta.json before deleting the chunk).
        """
        state = self.state
        tails = self._read_tails(s)
        listing = sorted(os.listdir(s.directory))
        state.damage.set_aside.update(s.directory / n for n in listing if is_set_aside(n))
        meta = self._session_meta(s)
        evicted_chunks = meta.evicted_chunks if meta is not None else s.evicted_chunks
        evicted = meta.evicted if meta is not None else s.evicted
        chunk_indices = {int(m.group(1)): name for name in listing if (m := CHUNK_RE.match(name))}
        kept = [c for c in s.chunks if c.index >= evicted_chunks and c.index in chunk_indices]
        first_load = not s.chunks and s.n_open == 0 and s.sealed.steps == 0
        if first_load or evicted_chunks != s.evicted_chunks:
            # Rows evicted since the last look may never have been loaded here: fold again from
            # the writer's summary of everything evicted.
            s.evicted = evicted
            s.sealed = evicted
            for c in kept:
                s.sealed = fold(s.sealed, c.rows)
        s.chunks, s.evicted_chunks = kept, evicted_chunks
        last_index = max((c.index for c in s.chunks), default=-1)
        held = state.held_bytes()
        for index in sorted(chunk_indices):
            path = s.directory / chunk_indices[index]
            if index < evicted_chunks:
                self._evicted_leftover(s, path, index, evicted)
                continue
            if index <= last_index or path in state.damage.reported:
                continue
            try:
                mmap = state.memory_budget_bytes is not None and held >= state.memory_budget_bytes
                header, rows, nbytes = read_chunk(path, state.dtype, state.dims, mmap=mmap)
                self._check_chunk(path, index, header, rows, s)
            except FileNotFoundError:
                return False  # evicted meanwhile (meta.json already says so): look again
            except CorruptFileError as exc:
                self.set_aside(path, f"{exc}; chunk skipped")
                continue
            s.chunks.append(Chunk(index, header.serial, rows, path, nbytes, not mmap))
            held += 0 if mmap else nbytes
            s.sealed = fold(s.sealed, rows)
            state.next_serial = max(state.next_serial, header.serial + 1)
            last_index = index
        open_rows, spent = self._open_rows(s, tails)
        indices = [int(m.group(1)) for n in listing if (m := ANY_INDEX_RE.match(n))]
        s.open_index = max([last_index + 1, evicted_chunks, *[i + 1 for i in indices]])
        if state.readonly:
            s.open_rows, s.n_open, s.n_durable = open_rows, len(open_rows), len(open_rows)
            s.tail_size = open_rows.nbytes  # approximate: excludes the tail header
        else:
            self._rewrite_open(s, open_rows, spent)
        last_seq = s.open_rows[s.n_open - 1]["seq"] if s.n_open else s.sealed.last_seq
        s.next_seq = None if last_seq is None else int(last_seq) + 1
        last_flags = (
            int(s.open_rows[s.n_open - 1]["flags"])
            if s.n_open
            else (int(s.chunks[-1].rows[-1]["flags"]) if s.chunks else 0)
        )
        s.after_last = bool(last_flags & LAST)
        s.segments = None
        return True

    def _read_tails(self, s: Stream) -> list[tuple[Path, TailScan]]:
        """Every readable tail of the stream, in index order (damage is reported here)."""
        state, found = self.state, []
        for name in sorted(os.listdir(s.directory)):
            match = TAIL_RE.match(name)
            if not match:
                continue
            path = s.directory / name
            try:
                scan = read_tail(path, state.dtype, state.dims)
            except FileNotFoundError:
                continue
            except CorruptFileError as exc:
                if self._writer or exc.header_intact:  # a reader may see a tail being created right now
                    self.set_aside(path, f"{exc}; tail skipped")
                continue
            if (scan.header.robot_id, scan.header.session_id) != (s.robot_id, s.session_id):
                self.set_aside(path, f"{path} belongs to another session; skipped")
                continue
            if scan.header.chunk_index != int(match.group(1)):
                self.set_aside(path, f"{path}: header says chunk_index {scan.header.chunk_index}; skipped")
                continue
            # A reader may catch the writer mid-append: only damage before an intact record is real.
            damaged = scan.damaged if self._writer else scan.damaged_inside
            torn = scan.torn_bytes if self._writer else 0
            if (damaged or torn) and path not in state.damage.reported:
                state.damage.damaged_records += damaged
                state.damage.torn_records += 1 if torn else 0
                found_parts = [f"{damaged} damaged record(s) skipped"] if damaged else []
                found_parts += [f"cut a torn last record ({torn} bytes, a crash mid-append)"] if torn else []
                kept = "; the writer keeps the file as a .quarantine copy" if self._writer and damaged else ""
                state.warn(path, f"{path.name}: {'; '.join(found_parts)}; {len(scan.rows)} intact record(s) kept{kept}"
                           f" ({path})")
            found.append((path, scan))
        return found

    def _evicted_leftover(self, s: Stream, path: Path, index: int, evicted: Summary) -> None:
        """A chunk below ``evicted_chunks``: delete it (writer) only if the evicted summary covers it."""
        try:
            header = read_chunk_header(path, self.state.dims)
        except FileNotFoundError:
            return  # the writer finished the eviction meanwhile
        except CorruptFileError as exc:
            self.set_aside(path, f"{exc}; chunk below evicted_chunks kept aside")
            return
        if evicted.last_seq is None or header.last_seq > evicted.last_seq:
            raise MetadataError(
                s.directory / META_JSON,
                "evicted_chunks",
                f"says chunks below {s.evicted_chunks} were evicted, but {path.name} holds seqs "
                f"{header.first_seq}..{header.last_seq} that the evicted summary (evicted.last_seq="
                f"{evicted.last_seq}) does not cover",
            )
        if self._writer:  # an eviction was interrupted between meta.json and the unlink
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise write_error(path, exc) from exc

    @staticmethod
    def _check_chunk(path: Path, index: int, header: ChunkHeader, rows: np.ndarray, s: Stream) -> None:
        if (header.robot_id, header.session_id) != (s.robot_id, s.session_id):
            raise CorruptFileError(f"{path}: belongs to session {header.robot_id}/{header.session_id}")
        if header.chunk_index != index:
            raise CorruptFileError(f"{path}: header says chunk_index {header.chunk_index}")
        seq = rows["seq"].astype(np.int64)
        if len(seq) == 0 or np.any(np.diff(seq) <= 0):
            raise CorruptFileError(f"{path}: rows empty or seq not increasing")
        if (int(seq[0]), int(seq[-1])) != (header.first_seq, header.last_seq):
            raise CorruptFileError(f"{path}: rows hold seqs {seq[0]}..{seq[-1]}, header says "
                                   f"{header.first_seq}..{header.last_seq}")
        if s.sealed.last_seq is not None and seq[0] <= s.sealed.last_seq:
            raise CorruptFileError(f"{path}: seq {seq[0]} overlaps rows already loaded (up to {s.sealed.last_seq})")

    def _open_rows(self, s: Stream, tails: list[tuple[Path, TailScan]]) -> tuple[np.ndarray, list[tuple[Path, bool]]]:
        """The open rows (tail records past the last sealed row, in seq order) and, per tail file,
        whether it is proven spent (no damaged record, and every record kept or already stored elsewhere)."""
        last_seq = s.sealed.last_seq
        pieces: list[np.ndarray] = []
        spent: list[tuple[Path, bool]] = []
        for path, scan in tails:
            rows = scan.rows
            keep = rows["seq"] > (-1 if last_seq is None else last_seq)
            proven = scan.damaged == 0 and self._stored(s, rows["seq"][~keep], pieces)
            if keep.any():
                pieces.append(rows[keep])
                last_seq = int(rows["seq"][keep][-1])
            spent.append((path, proven))
        open_rows = np.concatenate(pieces) if pieces else np.empty(0, self.state.dtype)
        if len(open_rows):
            # Rows after a hole (damaged records skipped) start a new run, as after a seq gap.
            before = -2 if s.sealed.last_seq is None else s.sealed.last_seq
            seqs = open_rows["seq"].astype(np.int64)
            broken = np.diff(np.concatenate([[before], seqs])) != 1
            open_rows["flags"][broken] |= RESET
        return open_rows, spent

    @staticmethod
    def _stored(s: Stream, seqs: np.ndarray, pieces: list[np.ndarray]) -> bool:
        """Whether every seq is in the evicted summary, a loaded chunk or an earlier tail."""
        if len(seqs) == 0:
            return True
        evicted = -1 if s.evicted.last_seq is None else s.evicted.last_seq
        seqs = seqs[seqs > evicted]
        held = [c.rows["seq"] for c in s.chunks] + [p["seq"] for p in pieces]
        held = np.concatenate(held) if held else np.empty(0, np.uint64)
        return bool(np.isin(seqs, held).all())

    def _rewrite_open(self, s: Stream, rows: np.ndarray, old_tails: list[tuple[Path, bool]]) -> None:
        """Writer: write the recovered open rows as one clean tail at a fresh index, reopen it for
        appending, then delete the old tails proven spent and set the others aside.

        The new tail is durable before any old one goes, so a crash in between leaves both
        (the next open drops the repeated rows by seq)."""
        state = self.state
        s.open_rows = np.zeros(max(state.chunk_length, len(rows)), state.dtype)
        s.open_rows[: len(rows)] = rows
        s.n_open = s.n_durable = len(rows)
        s.tail_size = 0
        try:
            if len(rows):
                s.open_rows["crc"][: len(rows)] = record_crcs(s.open_rows[: len(rows)])
                path = s.tail_path(s.open_index)
                atomic_write(path, tail_bytes(state.tail_header(s), s.open_view()))
                s.tail_fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                s.tail_size = os.fstat(s.tail_fd).st_size
            for old, spent in old_tails:
                if spent:
                    old.unlink(missing_ok=True)
                else:
                    self.set_aside(old, f"{old}: kept as a .quarantine copy (not every record in it is stored)")
            if old_tails:
                fsync_dir(s.directory)
        except ReplayWriteError:
            raise
        except OSError as exc:
            raise write_error(s.directory, exc) from exc
