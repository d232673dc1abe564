"""Durable file writes: the one atomic write used by replay chunks, checkpoints, bundles and learner state.

A file written with :func:`atomic_write` holds either its old content or all of the new
content after a crash or power loss, never a mix: the bytes go to a temporary file in the
same directory, are fsynced, renamed over the target, and the directory is fsynced so that
the rename itself is durable.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte to ``fd`` (``os.write`` may write fewer than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(directory: str | Path) -> None:
    """Make a create, rename or unlink inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, content: bytes | Callable[[BinaryIO], None], mode: int = 0o644) -> Path:
    """Replace ``path`` with ``content`` atomically and durably; returns the path.

    ``content`` is the bytes to write, or a function that writes them to the open binary
    file it is given (for writers that stream, such as ``torch.save`` or ``zipfile``). The
    temporary file is unique per call, so concurrent writers of one path never share it; on
    any error it is removed and the old file is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
                f.flush()
            else:
                write_all(f.fileno(), content)
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path
