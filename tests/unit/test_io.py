"""The one atomic write: old or new content after any failure, never a mix; file and directory fsynced."""

from __future__ import annotations

import os
import stat

import pytest

from dreamer_core import io


def test_writes_bytes_and_streamed_content(tmp_path):
    path = tmp_path / "state.json"
    assert io.atomic_write(path, b"one") == path
    assert path.read_bytes() == b"one"
    io.atomic_write(path, lambda f: f.write(b"two, streamed"))
    assert path.read_bytes() == b"two, streamed"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    io.atomic_write(path, b"secret", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failing_write_keeps_the_old_content_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "agent.ckpt"
    path.write_bytes(b"old checkpoint")

    def half_then_crash(f):
        f.write(b"new but incomplete")
        raise RuntimeError("disk pulled")

    with pytest.raises(RuntimeError, match="disk pulled"):
        io.atomic_write(path, half_then_crash)
    assert path.read_bytes() == b"old checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["agent.ckpt"]


def test_a_failing_rename_keeps_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"old")

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.os, "replace", no_rename)
    with pytest.raises(OSError, match="No space"):
        io.atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.zip"]


def test_file_data_and_the_rename_are_fsynced_before_returning(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "fsync", fsync)
    monkeypatch.setattr(io.os, "replace", replace)
    io.atomic_write(tmp_path / "x", b"data")
    assert events == ["fsync file", "rename", "fsync dir"]
