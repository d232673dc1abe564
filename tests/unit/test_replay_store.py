"""Replay store: ingest, exactly-once, validation, locking, eviction, session metadata, write errors."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
from replay_support import ACT, OBS, check_content, make, stored_seqs

from dreamer_core import io as dreamer_io
from dreamer_core.storage import AddResult, ReplayStore, ReplayStoreError, ReplayWriteError, writer


def open_store(path, **kw) -> ReplayStore:
    kw.setdefault("chunk_length", 16)
    return ReplayStore(path, obs_dim=OBS, act_dim=ACT, **kw)


def test_rows_survive_reopen_in_order(tmp_path):
    with open_store(tmp_path) as s:
        for seq in range(100):
            assert s.add(make(seq)) == AddResult.ADDED
        assert s.num_steps == 100
    with ReplayStore(tmp_path, readonly=True) as r:
        assert (r.obs_dim, r.act_dim) == (OBS, ACT)
        np.testing.assert_array_equal(stored_seqs(r), np.arange(100))
        check_content(r)
        assert r.stats()["chunks"] == 100 // 16


def test_duplicates_dropped_gaps_counted(tmp_path):
    with open_store(tmp_path) as s:
        results = [s.add(make(seq)) for seq in [0, 1, 2, 2, 1, 5, 4, 6, 9, 9]]
        assert results == ["added", "added", "added", "duplicate", "duplicate", "gap", "duplicate", "added",
                           "gap", "duplicate"]
        stats = s.stats()
        assert (stats["duplicates"], stats["gaps"], stats["steps"]) == (4, 4, 6)
    # Exactly once across a restart: the dedup state is recovered from disk.
    with open_store(tmp_path) as s:
        assert s.add(make(6)) == AddResult.DUPLICATE
        assert s.add(make(10)) == AddResult.ADDED
        np.testing.assert_array_equal(stored_seqs(s), [0, 1, 2, 5, 6, 9, 10])
        assert s.sessions()[0].gaps == 4


def test_gap_starts_a_new_run_in_samples(tmp_path):
    with open_store(tmp_path) as s:
        for seq in [*range(0, 4), *range(6, 12)]:
            s.add(make(seq, episode=1000))
        batch = s.sample(1, 10, seed=0)
    assert batch["is_first"][0].tolist() == [True, False, False, False, True, *[False] * 5]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("obs", np.zeros(OBS + 1), "Transition.obs has shape"),
        ("action", np.array([0.0, np.nan, 0.0]), "Transition.action contains NaN"),
        ("obs", np.full(OBS, np.inf), "Transition.obs contains NaN or inf"),
        ("reward", float("nan"), "Transition.reward"),
        ("seq", -1, "Transition.seq"),
        ("session_id", "", "Transition.session_id"),
    ],
)
def test_invalid_transition_rejected_and_nothing_stored(tmp_path, field, value, message):
    with open_store(tmp_path) as s:
        s.add(make(0))
        bad = make(1)
        setattr(bad, field, value)
        with pytest.raises(ValueError, match=message):
            s.add(bad)
        assert s.num_steps == 1
        assert s.add(make(1)) == AddResult.ADDED


def test_one_writer_per_directory(tmp_path):
    with open_store(tmp_path):
        with pytest.raises(ReplayStoreError, match=f"already open for writing by pid {os.getpid()}"):
            open_store(tmp_path)
        with ReplayStore(tmp_path, readonly=True) as reader:  # readers need no lock
            assert reader.num_steps == 0
    with open_store(tmp_path):  # released on close
        pass


def test_dimension_mismatch_and_missing_store_are_clear_errors(tmp_path):
    open_store(tmp_path).close()
    with pytest.raises(ReplayStoreError, match=f"obs_dim={OBS + 1} does not match"):
        ReplayStore(tmp_path, obs_dim=OBS + 1, act_dim=ACT)
    with pytest.raises(ReplayStoreError, match="not a replay store"):
        ReplayStore(tmp_path / "nothing", readonly=True)
    with pytest.raises(ReplayStoreError, match="needs positive obs_dim and act_dim"):
        ReplayStore(tmp_path / "new")
    with ReplayStore(tmp_path, readonly=True) as r, pytest.raises(ReplayStoreError, match="readonly"):
        r.add(make(0))


def test_eviction_oldest_first_keeps_session_metadata(tmp_path):
    with open_store(tmp_path, chunk_length=10, capacity_steps=100) as s:
        for seq in range(150):
            for session in ("a", "b"):
                s.add(make(seq, session=session))
        assert s.num_steps <= 100 + 2 * 10  # open chunks are never evicted
        stats = s.stats()
        assert stats["evicted_steps"] == 300 - s.num_steps
        heads = {name: int(stored_seqs(s, name)[0]) for name in ("a", "b")}
    assert min(heads.values()) > 0 and abs(heads["a"] - heads["b"]) <= 10  # interleaved streams age together
    with ReplayStore(tmp_path, readonly=True) as r:
        for name in ("a", "b"):
            seqs = stored_seqs(r, name)
            np.testing.assert_array_equal(seqs, np.arange(seqs[0], 150))
        infos = {i.session_id: i for i in r.sessions()}
    for info in infos.values():
        assert (info.steps, info.episodes, info.gaps) == (150, 15, 0)
        # Each episode returns the sum of seq % 7 over its 10 steps.
        expected = [float(sum(q % 7 for q in range(e * 10, e * 10 + 10))) for e in range(15)]
        assert info.returns == expected
        assert info.policy_versions == [0, 1]
        assert info.start == pytest.approx(1.7e9) and info.end == pytest.approx(1.7e9 + 1.49)
    files = sorted(p.name for p in (tmp_path / "sessions").rglob("chunk-*"))
    assert len(files) == r.stats()["chunks"]


def test_eviction_by_bytes(tmp_path):
    with open_store(tmp_path, chunk_length=10, capacity_bytes=20_000) as s:
        for seq in range(500):
            s.add(make(seq))
        s.flush()
        on_disk = sum(p.stat().st_size for p in (tmp_path / "sessions").rglob("*.rp?"))
        assert s.disk_bytes == on_disk
        assert on_disk <= 20_000
        assert s.stats()["evicted_steps"] > 0


def failing_write(after_bytes: int):
    """A stand-in for write_all that writes part of the data, then fails like a full disk."""

    def write(fd, data):
        os.write(fd, bytes(memoryview(data)[:after_bytes]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


def test_disk_full_on_tail_flush_is_clear_and_keeps_data(tmp_path, monkeypatch):
    s = open_store(tmp_path, chunk_length=64, durability_interval=3600)
    for seq in range(10):
        s.add(make(seq))
    s.flush()
    for seq in range(10, 20):
        s.add(make(seq))
    monkeypatch.setattr(writer, "write_all", failing_write(100))
    with pytest.raises(ReplayWriteError, match="No space left on device") as info:
        s.flush()
    assert info.value.errno == errno.ENOSPC and "tail-" in str(info.value)
    with ReplayStore(tmp_path, readonly=True) as r:  # what was durable is intact and readable
        np.testing.assert_array_equal(stored_seqs(r), np.arange(10))
        assert r.stats()["damaged_files"] == 0
    monkeypatch.undo()  # space freed: the held rows are written by the next flush
    s.flush()
    s.close()
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), np.arange(20))
        check_content(r)


def test_disk_full_on_seal_is_clear_and_keeps_data(tmp_path, monkeypatch):
    s = open_store(tmp_path, chunk_length=8, durability_interval=3600)
    for seq in range(12):
        s.add(make(seq))
    s.flush()
    monkeypatch.setattr(dreamer_io, "write_all", failing_write(50))
    with pytest.raises(ReplayWriteError, match="No space left on device"):
        for seq in range(12, 16):
            s.add(make(seq))
    leftovers = [p.name for p in (tmp_path / "sessions").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), np.arange(12))
    monkeypatch.undo()
    # 15 was taken in before its seal failed: it is held, so 16 follows it and the seal is retried.
    assert s.add(make(15)) == AddResult.DUPLICATE
    assert s.add(make(16)) == AddResult.ADDED
    s.close()
    with ReplayStore(tmp_path, readonly=True) as r:
        np.testing.assert_array_equal(stored_seqs(r), np.arange(17))
        assert r.stats()["chunks"] == 2


def test_session_metadata_persisted_and_listed(tmp_path):
    with open_store(tmp_path) as s:
        for seq in range(25):
            s.add(make(seq, session="morning", robot="a1"))
        for seq in range(5):
            s.add(make(seq, session="noon", robot="go1", policy_version=7))
    meta = json.loads(next((tmp_path / "sessions").glob("a1--morning--*/meta.json")).read_text())
    assert (meta["robot_id"], meta["session_id"]) == ("a1", "morning")
    with ReplayStore(tmp_path, readonly=True) as r:
        infos = r.sessions()
    assert [(i.robot_id, i.session_id, i.steps) for i in infos] == [("a1", "morning", 25), ("go1", "noon", 5)]
    assert infos[0].episodes == 2 and infos[1].episodes == 0  # go1's episode never ended
    assert infos[1].policy_versions == [7]


def test_lower_capacity_applies_on_reopen(tmp_path):
    with open_store(tmp_path, chunk_length=10) as s:
        for seq in range(100):
            s.add(make(seq))
    with open_store(tmp_path, chunk_length=10, capacity_steps=35) as s:
        np.testing.assert_array_equal(stored_seqs(s), np.arange(70, 100))
        assert s.sessions()[0].steps == 100
