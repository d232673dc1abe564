"""The replay store's error and warning types (each is documented in docs/replay.md)."""

from __future__ import annotations

from pathlib import Path


class ReplayStoreError(Exception):
    """A store cannot be opened or used as asked (the message says why and what to do)."""


class ReplayWriteError(ReplayStoreError, OSError):
    """Writing to disk failed (e.g. disk full). Data already durable is intact; rows not yet
    durable stay in memory and are written by the next successful flush."""


class MetadataError(ReplayStoreError):
    """``store.json`` or a session's ``meta.json`` holds a value of the wrong type or one that
    contradicts the data files. The store refuses to open rather than act on it (acting on a
    wrong ``evicted_chunks`` would delete data); ``path`` and ``key`` name what to fix."""

    def __init__(self, path: Path, key: str, problem: str):
        where = f"{path}: {key}" if key else str(path)
        super().__init__(
            f"{where}: {problem}. The replay store refuses to open and changes nothing; "
            "fix or restore this file (docs/replay.md, 'Metadata errors')"
        )
        self.path = path
        self.key = key


class CorruptFileError(ReplayStoreError):
    """A chunk or tail file failed a format, checksum or dimension check (the message names the
    file and the reason). The store skips such a file and the writer sets it aside.

    ``header_intact`` is True when the header itself was read whole (its CRC holds) and
    says something wrong, so the file cannot be one a writer is still creating.
    """

    def __init__(self, message: str, *, header_intact: bool = False):
        super().__init__(message)
        self.header_intact = header_intact


class InvalidTransitionError(ReplayStoreError, ValueError):
    """``add`` was given a transition it cannot store (wrong size, NaN/inf, bad ids or seq);
    the message names the field. Nothing is stored."""


class ReplayWarning(RuntimeWarning):
    """Something on disk was damaged and skipped or set aside (the message names the file)."""


def write_error(path: Path, exc: OSError) -> ReplayWriteError:
    """A ReplayWriteError for a failed write of ``path``, keeping the original errno."""
    error = ReplayWriteError(
        exc.errno,
        f"replay store: writing {path} failed: {exc.strerror or exc}. Data already on disk is intact; "
        "transitions since the last flush are held in memory and will be retried on the next flush "
        "(free disk space or fix the device)",
    )
    error.filename = str(path)
    return error
