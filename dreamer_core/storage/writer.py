"""The writer's side of a store: append, make durable, seal chunks, evict the oldest."""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np

from dreamer_core.io import fsync_dir, write_all

from .chunk import FIRST, LAST, RESET, TERMINAL, ChunkHeader, create_tail, read_chunk, record_crcs, write_chunk
from .errors import write_error
from .layout import META_JSON, session_dir_name
from .metadata import SessionMeta, write_session_meta
from .records import AddResult, Transition, check_ids, checked_scalars, checked_vector
from .sessions import fold
from .streams import Chunk, StoreState, Stream


class Writer:
    """Appends to a ``StoreState`` and keeps its files durable (the caller serialises calls)."""

    def __init__(
        self,
        state: StoreState,
        durability_interval: float,
        capacity_steps: int | None,
        capacity_bytes: int | None,
    ):
        self.state = state
        self.durability_interval = durability_interval
        self.capacity_steps = capacity_steps
        self.capacity_bytes = capacity_bytes
        self._last_flush = time.monotonic()

    def add(self, t: Transition) -> AddResult:
        state = self.state
        seq, reward, version, stamp = checked_scalars(t)
        obs = checked_vector(t.obs, state.obs_dim, "obs")
        action = checked_vector(t.action, state.act_dim, "action")
        s = state.streams.get((t.robot_id, t.session_id))
        if s is None:
            check_ids(t.robot_id, t.session_id)
            s = self._new_stream(t.robot_id, t.session_id)
        if s.next_seq is not None and seq < s.next_seq:
            s.duplicates += 1
            return AddResult.DUPLICATE
        if s.n_open >= state.chunk_length:  # a previous seal failed; retry before growing past a chunk
            self.seal(s)
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
        if s.n_open >= state.chunk_length:
            self.seal(s)
        if time.monotonic() - self._last_flush >= self.durability_interval:
            self.flush()
        return AddResult.GAP if gap else AddResult.ADDED

    def _new_stream(self, robot_id: str, session_id: str) -> Stream:
        state = self.state
        directory = state.sessions_dir / session_dir_name(robot_id, session_id)
        s = Stream(robot_id, session_id, directory, time.time())
        try:
            if directory.exists():  # left without readable identity by a crash: keep it aside, unused
                directory.rename(directory.with_name(f"{directory.name}.orphan-{time.time_ns()}"))
            directory.mkdir()
            write_session_meta(directory / META_JSON, SessionMeta(robot_id=robot_id, session_id=session_id,
                                                                  created=s.created))
            fsync_dir(directory.parent)
        except OSError as exc:
            raise write_error(directory / META_JSON, exc) from exc
        s.open_rows = np.zeros(state.chunk_length, state.dtype)
        state.add_stream(s)
        return s

    def maybe_flush(self) -> bool:
        if time.monotonic() - self._last_flush < self.durability_interval:
            return False
        self.flush()
        return True

    def flush(self) -> None:
        for s in self.state.streams.values():
            if s.n_durable < s.n_open:
                self._flush_stream(s)
        self._last_flush = time.monotonic()

    def _flush_stream(self, s: Stream) -> None:
        rows = s.open_rows[s.n_durable : s.n_open]
        rows["crc"] = record_crcs(rows)
        path = s.tail_path(s.open_index)
        try:
            if s.tail_fd is None:
                s.tail_fd, s.tail_size = create_tail(path, self.state.tail_header(s))
            write_all(s.tail_fd, rows.tobytes())
            os.fsync(s.tail_fd)
        except OSError as exc:
            if s.tail_fd is not None:  # drop a partial record so later appends stay readable
                with contextlib.suppress(OSError):
                    os.ftruncate(s.tail_fd, s.tail_size)
            raise write_error(path, exc) from exc
        s.tail_size += rows.nbytes
        s.n_durable = s.n_open

    def seal(self, s: Stream) -> None:
        state = self.state
        rows = s.open_view()
        rows["crc"][s.n_durable :] = record_crcs(rows[s.n_durable :])
        path = s.chunk_path(s.open_index)
        header = ChunkHeader(
            robot_id=s.robot_id, session_id=s.session_id, chunk_index=s.open_index, serial=state.next_serial,
            obs_dim=state.obs_dim, act_dim=state.act_dim, first_seq=int(rows["seq"][0]),
            last_seq=int(rows["seq"][-1]), rows=len(rows), payload_crc=0,
        )
        try:
            nbytes = write_chunk(path, header, rows)
        except OSError as exc:
            raise write_error(path, exc) from exc
        if s.tail_fd is not None:
            os.close(s.tail_fd)
            s.tail_fd = None
        s.tail_path(s.open_index).unlink(missing_ok=True)
        sealed = rows.copy() if len(rows) < len(s.open_rows) else s.open_rows
        in_memory = state.memory_budget_bytes is None or state.held_bytes() < state.memory_budget_bytes
        if not in_memory:
            _, sealed, _ = read_chunk(path, state.dtype, state.dims, mmap=True)
        s.chunks.append(Chunk(s.open_index, state.next_serial, sealed, path, nbytes, in_memory))
        s.sealed = fold(s.sealed, sealed)
        state.next_serial += 1
        s.open_rows = np.zeros(state.chunk_length, state.dtype)
        s.n_open = s.n_durable = s.tail_size = 0
        s.open_index += 1
        s.segments = None
        self.evict()

    def evict(self) -> None:
        """Delete the oldest sealed chunks (store-wide) while over a capacity limit."""
        state = self.state
        while (self.capacity_steps is not None and state.num_steps > self.capacity_steps) or (
            self.capacity_bytes is not None and state.disk_bytes > self.capacity_bytes
        ):
            candidates = [s for s in state.streams.values() if s.chunks]
            if not candidates:
                return  # only open chunks left; they are never evicted
            s = min(candidates, key=lambda st: st.chunks[0].serial)
            chunk = s.chunks[0]
            evicted = fold(s.evicted, chunk.rows)
            meta = SessionMeta(robot_id=s.robot_id, session_id=s.session_id, created=s.created,
                               evicted_chunks=chunk.index + 1, evicted=evicted)
            try:
                # meta.json first: a crash before the unlink leaves a chunk the next open can prove evicted.
                write_session_meta(s.directory / META_JSON, meta)
                chunk.path.unlink()
                fsync_dir(s.directory)
            except OSError as exc:
                raise write_error(chunk.path, exc) from exc
            s.chunks.pop(0)
            s.evicted_chunks = chunk.index + 1
            s.evicted = evicted
            s.segments = None

    def close_files(self) -> None:
        for s in self.state.streams.values():
            if s.tail_fd is not None:
                os.close(s.tail_fd)
                s.tail_fd = None

