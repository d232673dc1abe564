"""Where things live in a store directory, and the one-writer lock.

Layout of a store directory::

    store.json                         format version, obs_dim, act_dim, chunk_length, policy spec
    writer.pid                         pid of the writer holding the lock (information only)
    sessions/<robot>--<session>--<hash>/
        meta.json                      robot_id, session_id, created, evicted_chunks, evicted summary, crc32
        chunk-00000000.rpc ...         sealed chunks (written atomically, CRC32 over the payload)
        tail-00000001.rpt              the open chunk's durable rows (CRC32 per record)
        *.quarantine                   damaged files or copies the writer set aside (never loaded)
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from pathlib import Path

from dreamer_core.io import atomic_write

from .errors import ReplayStoreError

STORE_JSON = "store.json"
SESSIONS = "sessions"
META_JSON = "meta.json"
PID_FILE = "writer.pid"
QUARANTINE = ".quarantine"
# Damaged files set aside by earlier versions of the store; counted like quarantined ones.
_SET_ASIDE_RE = re.compile(r"\.(?:quarantine|corrupt)$")
CHUNK_RE = re.compile(r"^chunk-(\d{8,})\.rpc$")
TAIL_RE = re.compile(r"^tail-(\d{8,})\.rpt$")
ANY_INDEX_RE = re.compile(r"^(?:chunk|tail)-(\d{8,})\.")


def chunk_name(index: int) -> str:
    return f"chunk-{index:08d}.rpc"


def tail_name(index: int) -> str:
    return f"tail-{index:08d}.rpt"


def session_dir_name(robot_id: str, session_id: str) -> str:
    """A readable, filesystem-safe and unique folder name for a stream."""
    digest = hashlib.sha1(f"{robot_id}\0{session_id}".encode()).hexdigest()[:8]
    return f"{_slug(robot_id)}--{_slug(session_id)}--{digest}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:40]


def quarantine_path(path: Path) -> Path:
    """A free name beside ``path`` for a set-aside copy of it: ``NAME.quarantine``, ``NAME.1.quarantine``, ..."""
    candidate, n = path.with_name(path.name + QUARANTINE), 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}{QUARANTINE}")
    return candidate


def is_set_aside(name: str) -> bool:
    return _SET_ASIDE_RE.search(name) is not None


class WriterLock:
    """The one-writer lock: an exclusive ``flock`` on the store directory itself.

    The lock lives on an open descriptor of the directory, not on a file whose existence
    means "locked", so deleting or replacing any file in the store cannot let a second
    writer in (the directory cannot be unlinked while it holds data). ``writer.pid`` only
    tells a refused writer who holds the lock. Local filesystems only: ``flock`` is not
    reliable across NFS clients.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ReplayStoreError(
                f"replay store {directory} is already open for writing by pid {self.holder()} "
                f"(an flock on the directory); close that writer first, or open with readonly=True"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd
        try:
            atomic_write(directory / PID_FILE, f"{os.getpid()}\n".encode())
        except BaseException:
            self.release()
            raise

    def holder(self) -> str:
        try:
            return (self.directory / PID_FILE).read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
