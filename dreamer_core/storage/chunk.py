"""On-disk format of the replay store: sealed chunk files and append-only tail files.

Both kinds of file start with the same header: an 8-byte magic, a little-endian
uint32 length, that many bytes of JSON, and the CRC32 of the JSON. Rows follow
as fixed-size little-endian records (``record_dtype``), the same layout in
memory and on disk, so a chunk is loaded (or memory-mapped) without conversion.
The header names the stream and the obs/act sizes: a file whose sizes differ
from the store's is refused (two splits of the same record size would otherwise
be read misaligned).

- A chunk file holds ``rows`` records and, in its header, the CRC32 of all of
  them. It is written to a temporary name, fsynced and renamed, so it either
  exists complete or not at all.
- A tail file holds the records of a stream's open chunk. Each record ends with
  the CRC32 of its own bytes. Reading a tail keeps every record whose CRC holds,
  in seq order, and resynchronises on the record framing after a damaged one
  (``scan_records``), so one bad record never hides the intact ones after it.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dreamer_core.io import atomic_write, fsync_dir, write_all

from .errors import CorruptFileError

CHUNK_MAGIC = b"DRPCHNK1"
TAIL_MAGIC = b"DRPTAIL1"
FORMAT_VERSION = 1

# Bits of the record's ``flags`` field. RESET marks a row that starts a new run of
# contiguous data (first row of a session, after a seq gap or after an is_last row):
# the sampler reports it as is_first even when the producer did not.
FIRST, LAST, TERMINAL, RESET = 1, 2, 4, 8

_LEN = struct.Struct("<I")
_Count = Annotated[int, Field(ge=0)]


class TailHeader(BaseModel):
    """Header of a tail file (and the common part of a chunk header); types are checked strictly."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    format_version: Literal[1] = FORMAT_VERSION
    robot_id: str
    session_id: str
    chunk_index: _Count
    obs_dim: Annotated[int, Field(ge=1)]
    act_dim: Annotated[int, Field(ge=1)]


class ChunkHeader(TailHeader):
    """Header of a sealed chunk file."""

    rows: _Count
    serial: _Count  # store-wide sealing order, for oldest-first eviction
    first_seq: _Count
    last_seq: _Count
    payload_crc: _Count


_H = TypeVar("_H", bound=TailHeader)


def record_dtype(obs_dim: int, act_dim: int) -> np.dtype:
    """The fixed-size record of one transition; ``crc`` covers every byte before it."""
    return np.dtype(
        [
            ("seq", "<u8"),
            ("stamp", "<f8"),
            ("policy_version", "<u4"),
            ("reward", "<f4"),
            ("flags", "<u4"),
            ("obs", "<f4", (obs_dim,)),
            ("action", "<f4", (act_dim,)),
            ("crc", "<u4"),
        ]
    )


def record_crcs(rows: np.ndarray) -> np.ndarray:
    """CRC32 of each record's bytes except its own ``crc`` field."""
    size = rows.dtype.itemsize
    view = memoryview(np.ascontiguousarray(rows).view(np.uint8).reshape(-1))
    return np.fromiter(
        (zlib.crc32(view[i * size : (i + 1) * size - 4]) for i in range(len(rows))),
        dtype=np.uint32,
        count=len(rows),
    )


def encode_header(magic: bytes, header: TailHeader) -> bytes:
    """Magic, length, JSON, CRC32 of the JSON."""
    body = json.dumps(header.model_dump(), sort_keys=True).encode()
    return magic + _LEN.pack(len(body)) + body + _LEN.pack(zlib.crc32(body))


def decode_header(
    data: bytes | memoryview, magic: bytes, model: type[_H], path: Path, dims: tuple[int, int] | None
) -> tuple[_H, int]:
    """Parse and check a header; returns it and the offset of the first record.

    ``dims`` (obs_dim, act_dim) are the store's: a file made for other sizes is refused.
    """
    if len(data) < len(magic) + 8 or bytes(data[: len(magic)]) != magic:
        kind = magic[3:7].decode().lower()
        raise CorruptFileError(f"{path}: not a replay {kind} file (bad magic or too short)")
    start = len(magic) + 4
    (length,) = _LEN.unpack_from(data, len(magic))
    end = start + length
    if end + 4 > len(data):
        raise CorruptFileError(f"{path}: header truncated")
    body = bytes(data[start:end])
    (crc,) = _LEN.unpack_from(data, end)
    if zlib.crc32(body) != crc:
        raise CorruptFileError(f"{path}: header checksum mismatch")
    try:
        header = model.model_validate_json(body)
    except ValidationError as exc:
        problem = exc.errors()[0]
        key = ".".join(map(str, problem["loc"])) or "(header)"
        raise CorruptFileError(f"{path}: header key {key}: {problem['msg']}", header_intact=True) from None
    if dims is not None and (header.obs_dim, header.act_dim) != dims:
        raise CorruptFileError(
            f"{path}: holds obs_dim={header.obs_dim}, act_dim={header.act_dim} but this store holds "
            f"obs_dim={dims[0]}, act_dim={dims[1]}; refused (its rows would be read misaligned)",
            header_intact=True,
        )
    return header, end + 4


def write_chunk(path: Path, header: ChunkHeader, rows: np.ndarray) -> int:
    """Seal ``rows`` into a chunk file atomically (``header`` gets the row count and payload
    CRC filled in); returns the file size."""
    payload = np.ascontiguousarray(rows).tobytes()
    header = header.model_copy(update={"rows": len(rows), "payload_crc": zlib.crc32(payload)})
    data = encode_header(CHUNK_MAGIC, header) + payload
    atomic_write(path, data)
    return len(data)


def read_chunk_header(path: Path, dims: tuple[int, int]) -> ChunkHeader:
    """Only the header of a chunk file (for checks that need no rows)."""
    with open(path, "rb") as f:
        return decode_header(f.read(1 << 16), CHUNK_MAGIC, ChunkHeader, path, dims)[0]


def read_chunk(
    path: Path, dtype: np.dtype, dims: tuple[int, int], *, mmap: bool = False
) -> tuple[ChunkHeader, np.ndarray, int]:
    """Load and verify a chunk; returns (header, read-only rows, file size).

    With ``mmap`` the rows are memory-mapped after verification instead of held in memory.
    """
    data = path.read_bytes()
    header, offset = decode_header(data, CHUNK_MAGIC, ChunkHeader, path, dims)
    rows = header.rows
    if len(data) - offset != rows * dtype.itemsize:
        raise CorruptFileError(
            f"{path}: size {len(data)} does not match {rows} records of {dtype.itemsize} bytes (truncated?)"
        )
    if zlib.crc32(memoryview(data)[offset:]) != header.payload_crc:
        raise CorruptFileError(f"{path}: payload checksum mismatch")
    if mmap and rows:
        array = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(rows,))
    else:
        array = np.frombuffer(data, dtype=dtype, count=rows, offset=offset)
    return header, array, len(data)


def create_tail(path: Path, header: TailHeader) -> tuple[int, int]:
    """Create a tail file holding only its header; returns (fd open for appending, size)."""
    data = encode_header(TAIL_MAGIC, header)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    try:
        write_all(fd, data)
        os.fsync(fd)
        fsync_dir(path.parent)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return fd, len(data)


def tail_bytes(header: TailHeader, rows: np.ndarray) -> bytes:
    """A complete tail file's content (used to rewrite a tail after recovery)."""
    return encode_header(TAIL_MAGIC, header) + rows.tobytes()


@dataclass
class TailScan:
    """What reading a tail file found."""

    header: TailHeader
    rows: np.ndarray  # every record whose CRC holds, seq increasing (a copy)
    damaged: int  # complete records dropped (CRC failed, or seq not above the record before) ...
    damaged_inside: int  # ... of which this many lie before an intact record (not an append in progress)
    torn_bytes: int  # bytes of an incomplete last record (a crash mid-append)



def read_tail(path: Path, dtype: np.dtype, dims: tuple[int, int]) -> TailScan:
    """Read a tail file: its header and every intact record (see ``scan_records``)."""
    data = path.read_bytes()
    header, offset = decode_header(data, TAIL_MAGIC, TailHeader, path, dims)
    return TailScan(header, *scan_records(memoryview(data)[offset:], dtype))


def _record_ok(data: memoryview, pos: int, size: int) -> bool:
    (crc,) = _LEN.unpack_from(data, pos + size - 4)
    return zlib.crc32(data[pos : pos + size - 4]) == crc


def scan_records(data: memoryview, dtype: np.dtype) -> tuple[np.ndarray, int, int, int]:
    """Intact records of ``data`` in seq order; returns (rows, damaged records, of which
    before the last intact record, torn bytes).

    Records are fixed-size and carry their own CRC32. After a record that fails its CRC
    the scan tries the next record boundary, then every byte offset (bytes lost or added
    shift the framing), so intact records after damage are kept. A record whose seq is not
    above the one kept before it is dropped as damaged too (the writer only appends rising
    seqs). Trailing bytes too short for a record are a torn append.
    """
    size = dtype.itemsize
    count = len(data) // size
    rows = np.frombuffer(data, dtype=dtype, count=count)
    if len(data) == count * size and np.array_equal(record_crcs(rows), rows["crc"]):
        seqs = rows["seq"]
        if count < 2 or bool(np.all(seqs[1:] > seqs[:-1])):
            return rows.copy(), 0, 0, 0  # the common case: nothing damaged
    starts: list[int] = []
    damaged, inside, pos, end = 0, 0, 0, len(data)
    while pos + size <= end:
        if _record_ok(data, pos, size):
            starts.append(pos)
            pos += size
            continue
        resync = pos + size
        if not (resync + size <= end and _record_ok(data, resync, size)):
            resync = next((p for p in range(pos + 1, end - size + 1) if _record_ok(data, p, size)), None)
        if resync is None:  # nothing intact follows: whole records are damaged, the rest torn
            damaged += (end - pos) // size
            pos = end - (end - pos) % size
            break
        damaged += -(-(resync - pos) // size)
        inside = damaged  # an intact record follows
        pos = resync
    torn = end - pos
    found = np.concatenate([np.frombuffer(data, dtype=dtype, count=1, offset=p) for p in starts]) if starts else (
        np.empty(0, dtype)
    )
    keep = np.zeros(len(found), bool)
    last = -1
    for i, seq in enumerate(found["seq"].tolist()):
        if seq > last:
            keep[i], last = True, seq
    disorder = int(np.sum(~keep))
    return found[keep].copy(), damaged + disorder, inside + disorder, torn
