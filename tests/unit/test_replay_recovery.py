"""Replay store recovery: kill -9 mid-stream, torn tails, truncated and garbled chunks, garbage files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from replay_support import ACT, OBS, check_content, make, stored_seqs

from dreamer_core.storage import ReplayStore, ReplayStoreError, ReplayWarning
from dreamer_core.storage.chunk import record_dtype

WRITER = Path(__file__).with_name("replay_support.py")


def writer_process(directory: Path, count: int, start: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(directory), str(count), "--start", str(start)],
        stdout=subprocess.PIPE,
        text=True,
    )


def kill_after_durable(proc: subprocess.Popen, min_seq: int) -> int:
    """Read the writer's reports until seq ``min_seq`` is durable, then kill -9; returns the last reported."""
    durable = -1
    for line in proc.stdout:
        if line.startswith("durable"):
            durable = int(line.split()[1])
            if durable >= min_seq:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the writer ended before it could be killed"
    return durable


def session_dir(root: Path) -> Path:
    return next((root / "sessions").iterdir())


@pytest.mark.slow
def test_kill_9_mid_stream_loses_nothing_durable(tmp_path):
    resume = 0
    for _crash in range(4):  # crash, recover, resume where the store stands (as a resending producer would)
        durable = kill_after_durable(writer_process(tmp_path, 10**7, start=resume), resume + 1500)
        with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=50) as s:
            seqs = stored_seqs(s)
            # Everything reported durable is there, exactly once, in order, with its content.
            assert seqs[-1] >= durable
            np.testing.assert_array_equal(seqs, np.arange(len(seqs)))
            check_content(s)
            resume = int(seqs[-1]) + 1
    with ReplayStore(tmp_path, readonly=True) as r:
        seqs = stored_seqs(r)
        assert seqs[-1] >= durable
        np.testing.assert_array_equal(seqs, np.arange(len(seqs)))
        check_content(r)
        assert r.stats()["gaps"] == 0


def write_sample(root: Path, count: int = 45, chunk_length: int = 10) -> None:
    with ReplayStore(root, obs_dim=OBS, act_dim=ACT, chunk_length=chunk_length) as s:
        for seq in range(count):
            s.add(make(seq))


def test_torn_tail_is_cut_at_last_good_record(tmp_path):
    write_sample(tmp_path)
    tail = next(session_dir(tmp_path).glob("tail-*.rpt"))
    size = tail.stat().st_size
    os.truncate(tail, size - 7)  # the last record loses its end, as in a crash mid-write
    with pytest.warns(ReplayWarning, match=f"{tail.name}: cut a torn tail"):
        s = ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10)
    np.testing.assert_array_equal(stored_seqs(s), np.arange(44))
    s.add(make(44))
    s.add(make(45))
    s.close()
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), np.arange(46))
        check_content(r)


def test_garbled_tail_record_cuts_from_there(tmp_path):
    write_sample(tmp_path)  # chunks hold 0..39, the tail 40..44
    tail = next(session_dir(tmp_path).glob("tail-*.rpt"))
    size = record_dtype(OBS, ACT).itemsize
    data = bytearray(tail.read_bytes())
    data[len(data) - 3 * size + 5] ^= 0xFF  # inside the record of seq 42
    tail.write_bytes(bytes(data))
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), np.arange(42))


@pytest.mark.parametrize("damage", ["truncate", "garble", "garble_header", "empty"])
def test_damaged_chunk_skipped_with_warning_naming_it(tmp_path, damage):
    write_sample(tmp_path)
    victim = sorted(session_dir(tmp_path).glob("chunk-*.rpc"))[1]  # seqs 10..19
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "garble":
        data[-50] ^= 0x01
    elif damage == "garble_header":
        data[20] ^= 0x20
    else:
        data = bytearray()
    victim.write_bytes(bytes(data))
    with pytest.warns(ReplayWarning, match=victim.name):
        r = ReplayStore(tmp_path, readonly=True)
    expected = [*range(10), *range(20, 45)]
    np.testing.assert_array_equal(stored_seqs(r), expected)
    check_content(r)
    batch = r.sample(64, 15, seed=0)  # sequences across the hole restart their state there
    starts = batch["obs"][:, 0, 0].astype(int)
    for b in np.flatnonzero(starts < 10):
        assert batch["is_first"][b, 10 - starts[b]]
    # The writer keeps the damaged file aside (never loaded again) and goes on.
    with pytest.warns(ReplayWarning, match=victim.name):
        w = ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10)
    assert victim.with_name(victim.name + ".corrupt").exists() and not victim.exists()
    w.add(make(45))
    w.close()
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), [*expected, 45])
        assert r.sessions()[0].gaps == 10


def test_garbage_files_are_ignored_and_bad_store_json_is_an_error(tmp_path):
    write_sample(tmp_path, count=20)
    sdir = session_dir(tmp_path)
    (sdir / "chunk-00000099.rpc").write_bytes(os.urandom(3000))
    (sdir / "tail-00000098.rpt").write_bytes(os.urandom(3000))
    (sdir / "notes.txt").write_text("hello")
    (tmp_path / "sessions" / "junk").mkdir()
    with pytest.warns(ReplayWarning):
        r = ReplayStore(tmp_path, readonly=True)
    np.testing.assert_array_equal(stored_seqs(r), np.arange(20))
    (tmp_path / "store.json").write_text("{not json")
    with pytest.raises(ReplayStoreError, match=r"store\.json is damaged"):
        ReplayStore(tmp_path, readonly=True)


def test_interrupted_seal_leaves_no_duplicates(tmp_path):
    """A crash between writing a chunk and deleting its tail: the tail's rows are in the chunk."""
    write_sample(tmp_path, count=15)  # chunk 0 holds 0..9, tail 1 holds 10..14
    tail = next(session_dir(tmp_path).glob("tail-*.rpt"))
    saved = tail.read_bytes()
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10) as s:
        for seq in range(15, 20):
            s.add(make(seq))  # seals chunk 1 and deletes its tail
    assert not tail.exists()
    tail.write_bytes(saved)
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10) as s:
        np.testing.assert_array_equal(stored_seqs(s), np.arange(20))
    assert not tail.exists()


@pytest.mark.parametrize("damage", ["garble", "edit", "delete"])
def test_lost_session_meta_is_rebuilt_from_data_files(tmp_path, damage):
    write_sample(tmp_path, count=25)
    meta = session_dir(tmp_path) / "meta.json"
    text = meta.read_text()
    if damage == "garble":
        meta.write_text("{")
    elif damage == "edit":  # still valid JSON, but would claim chunk 0 was evicted: the checksum catches it
        assert '"evicted_chunks": 0' in text
        meta.write_text(text.replace('"evicted_chunks": 0', '"evicted_chunks": 1'))
    else:
        meta.unlink()
    with pytest.warns(ReplayWarning, match="meta.json is damaged") if damage != "delete" else nullcontext():
        s = ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10)
    with s:
        np.testing.assert_array_equal(stored_seqs(s), np.arange(25))
        s.add(make(25))
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), np.arange(26))
        assert [(i.robot_id, i.session_id) for i in r.sessions()] == [("robot", "s0")]
