"""On-disk format of the replay store: sealed chunk files and append-only tail files.

Both kinds of file start with the same header: an 8-byte magic, a little-endian
uint32 length, that many bytes of JSON, and the CRC32 of the JSON. Rows follow
as fixed-size little-endian records (``record_dtype``), the same layout in
memory and on disk, so a chunk is loaded (or memory-mapped) without conversion.

- A chunk file holds ``rows`` records and, in its header, the CRC32 of all of
  them. It is written to a temporary name, fsynced and renamed, so it either
  exists complete or not at all.
- A tail file holds the records of a stream's open chunk. Each record ends with
  the CRC32 of its own bytes, so a write torn by a crash is cut at the last good
  record instead of spoiling the file.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from dreamer_core.io import atomic_write, fsync_dir, write_all

CHUNK_MAGIC = b"DRPCHNK1"
TAIL_MAGIC = b"DRPTAIL1"
FORMAT_VERSION = 1

# Bits of the record's ``flags`` field. RESET marks a row that starts a new run of
# contiguous data (first row of a session, after a seq gap or after an is_last row):
# the sampler reports it as is_first even when the producer did not.
FIRST, LAST, TERMINAL, RESET = 1, 2, 4, 8

_LEN = struct.Struct("<I")


class CorruptFileError(Exception):
    """A store file failed a format or checksum check (the message names the file and the reason)."""


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


def encode_header(magic: bytes, header: dict) -> bytes:
    """Magic, length, JSON, CRC32 of the JSON."""
    body = json.dumps(header, sort_keys=True).encode()
    return magic + _LEN.pack(len(body)) + body + _LEN.pack(zlib.crc32(body))


def decode_header(data: bytes | memoryview, magic: bytes, path: Path) -> tuple[dict, int]:
    """Parse a header; returns it and the offset of the first record."""
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
        header = json.loads(body)
    except ValueError as exc:
        raise CorruptFileError(f"{path}: header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format_version") != FORMAT_VERSION:
        raise CorruptFileError(f"{path}: unsupported format version {header.get('format_version')!r}")
    return header, end + 4


def write_chunk(path: Path, header: dict, rows: np.ndarray) -> int:
    """Seal ``rows`` into a chunk file atomically; returns the file size."""
    payload = np.ascontiguousarray(rows).tobytes()
    checks = {"format_version": FORMAT_VERSION, "rows": len(rows), "payload_crc": zlib.crc32(payload)}
    header = {**header, **checks}
    data = encode_header(CHUNK_MAGIC, header) + payload
    atomic_write(path, data)
    return len(data)


def read_chunk(path: Path, dtype: np.dtype, *, mmap: bool = False) -> tuple[dict, np.ndarray, int]:
    """Load and verify a chunk; returns (header, read-only rows, file size).

    With ``mmap`` the rows are memory-mapped after verification instead of held in memory.
    """
    data = path.read_bytes()
    header, offset = decode_header(data, CHUNK_MAGIC, path)
    rows = header.get("rows")
    if not isinstance(rows, int) or rows < 0 or len(data) - offset != rows * dtype.itemsize:
        raise CorruptFileError(
            f"{path}: size {len(data)} does not match {rows!r} records of {dtype.itemsize} bytes (truncated?)"
        )
    if zlib.crc32(memoryview(data)[offset:]) != header.get("payload_crc"):
        raise CorruptFileError(f"{path}: payload checksum mismatch")
    if mmap and rows:
        array = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(rows,))
    else:
        array = np.frombuffer(data, dtype=dtype, count=rows, offset=offset)
    return header, array, len(data)


def create_tail(path: Path, header: dict) -> tuple[int, int]:
    """Create a tail file holding only its header; returns (fd open for appending, size)."""
    data = encode_header(TAIL_MAGIC, {**header, "format_version": FORMAT_VERSION})
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


def tail_bytes(header: dict, rows: np.ndarray) -> bytes:
    """A complete tail file's content (used to rewrite a tail after recovery)."""
    return encode_header(TAIL_MAGIC, {**header, "format_version": FORMAT_VERSION}) + rows.tobytes()


def read_tail(path: Path, dtype: np.dtype) -> tuple[dict, np.ndarray, int]:
    """Read a tail file; returns (header, rows up to the first bad record, bytes dropped after them)."""
    data = path.read_bytes()
    header, offset = decode_header(data, TAIL_MAGIC, path)
    count = (len(data) - offset) // dtype.itemsize
    rows = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    bad = np.flatnonzero(record_crcs(rows) != rows["crc"])
    good = int(bad[0]) if len(bad) else count
    return header, rows[:good].copy(), len(data) - offset - good * dtype.itemsize
