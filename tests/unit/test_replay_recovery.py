"""Replay store recovery: kill -9 mid-stream, torn and garbled tails, truncated and garbled chunks, garbage files."""

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

from dreamer_core.storage import AddResult, MetadataError, ReplayStore, ReplayWarning
from dreamer_core.storage.chunk import record_dtype
from dreamer_core.storage.cli import main as replay_cli

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
    with pytest.warns(ReplayWarning, match=f"{tail.name}: cut a torn last record"):
        s = ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10)
    np.testing.assert_array_equal(stored_seqs(s), np.arange(44))
    assert s.stats()["torn_records"] == 1 and s.stats()["quarantine_files"] == 0  # never acknowledged: no copy
    s.add(make(44))
    s.add(make(45))
    s.close()
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), np.arange(46))
        check_content(r)


def test_garbled_tail_record_keeps_the_intact_records_after_it(tmp_path, capsys):
    """One flipped bit in a tail record: that record is skipped, the intact ones after it are
    kept, and the writer keeps the damaged file as a quarantine copy (on the base commit the
    tail was cut there and every later durable record deleted)."""
    write_sample(tmp_path)  # chunks hold 0..39, the tail 40..44
    tail = next(session_dir(tmp_path).glob("tail-*.rpt"))
    size = record_dtype(OBS, ACT).itemsize
    data = bytearray(tail.read_bytes())
    data[len(data) - 3 * size + 5] ^= 0x01  # inside the record of seq 42
    tail.write_bytes(bytes(data))
    kept = [*range(42), 43, 44]
    with pytest.warns(ReplayWarning, match=f"{tail.name}: 1 damaged record"), ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), kept)
        assert r.stats()["damaged_records"] == 1
    assert tail.read_bytes() == bytes(data), "a reader never changes a file"
    with pytest.warns(ReplayWarning, match=f"{tail.name}: 1 damaged record"):
        w = ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10)
    np.testing.assert_array_equal(stored_seqs(w), kept)
    check_content(w)
    assert (w.stats()["damaged_records"], w.stats()["quarantine_files"]) == (1, 1)
    quarantined = tail.with_name(tail.name + ".quarantine")
    assert quarantined.read_bytes() == bytes(data), "the damaged bytes are kept, as they were"
    batch = w.sample(32, 8, seed=0)  # a sequence across the hole restarts its state at seq 43
    for b in np.flatnonzero(batch["obs"][:, 0, 0] < 43):
        steps = batch["obs"][b, :, 0].astype(int)
        if 43 in steps:
            assert batch["is_first"][b, list(steps).index(43)]
    assert w.add(make(42)) == AddResult.DUPLICATE  # below the highest stored seq
    w.add(make(45))
    w.close()
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), [*kept, 45])
        assert r.sessions()[0].gaps == 1 and r.stats()["quarantine_files"] == 1
        assert r.stats()["damaged_records"] == 0  # the rewritten tail is clean
    assert replay_cli(["info", str(tmp_path)]) == 0
    assert "1 *.quarantine files kept" in capsys.readouterr().out


def test_garbled_run_of_records_and_shifted_bytes_resynchronise(tmp_path):
    """Several damaged records, and bytes lost in the middle (framing shifted): every intact
    record after them is still found."""
    write_sample(tmp_path, count=30, chunk_length=64)  # everything in one tail
    tail = next(session_dir(tmp_path).glob("tail-*.rpt"))
    size = record_dtype(OBS, ACT).itemsize
    data = bytearray(tail.read_bytes())
    header = len(data) - 30 * size
    data[header + 5 * size : header + 8 * size] = np.random.default_rng(0).bytes(3 * size)  # seqs 5-7 garbled
    del data[header + 20 * size + 10 : header + 20 * size + 17]  # 7 bytes of seq 20 lost
    tail.write_bytes(bytes(data))
    with pytest.warns(ReplayWarning, match="damaged record"), ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), [*range(5), *range(8, 20), *range(21, 30)])
        check_content(r)
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
    assert victim.with_name(victim.name + ".quarantine").exists() and not victim.exists()
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
    with pytest.raises(MetadataError, match=r"store\.json: not valid JSON"):
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
    if damage != "delete":  # the untrusted file is kept aside, not overwritten
        assert meta.with_name("meta.json.quarantine").read_text() != meta.read_text()
    with s:
        np.testing.assert_array_equal(stored_seqs(s), np.arange(25))
        s.add(make(25))
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), np.arange(26))
        assert [(i.robot_id, i.session_id) for i in r.sessions()] == [("robot", "s0")]


def test_interrupted_eviction_is_finished_when_meta_json_proves_it(tmp_path):
    """A crash between the meta.json update and the unlink leaves an evicted chunk behind: the
    evicted summary covers its rows, so the next writer deletes it (a reader skips it)."""
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10) as s:
        for seq in range(35):
            s.add(make(seq))
    first = sorted(session_dir(tmp_path).glob("chunk-*.rpc"))[0]
    saved = first.read_bytes()
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10, capacity_steps=30) as s:
        np.testing.assert_array_equal(stored_seqs(s), np.arange(10, 35))
    first.write_bytes(saved)  # as if the unlink had not happened
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), np.arange(10, 35))
    assert first.exists()
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10) as s:
        np.testing.assert_array_equal(stored_seqs(s), np.arange(10, 35))
        assert s.sessions()[0].steps == 35 and s.stats()["quarantine_files"] == 0
    assert not first.exists()
