"""A writer process and a reader process on one host see one consistent store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from replay_support import ACT, OBS, check_content, make, stored_seqs

from dreamer_core.storage import ReplayStore

WRITER = Path(__file__).with_name("replay_support.py")


@pytest.mark.slow
def test_reader_follows_a_live_writer(tmp_path):
    total = 6000
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(tmp_path), str(total), "--chunk", "50", "--pace", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        reader = ReplayStore(tmp_path, readonly=True)
        seen, refreshes, grew = 0, 0, 0
        while proc.poll() is None or refreshes == 0:
            new = reader.refresh()
            refreshes += 1
            seqs = stored_seqs(reader)
            # Always a prefix of the stream: in order, exactly once, nothing half-written.
            np.testing.assert_array_equal(seqs, np.arange(len(seqs)))
            assert len(seqs) == seen + new and len(seqs) >= seen
            grew += len(seqs) > seen
            seen = len(seqs)
            if seen >= 64:
                batch = reader.sample(8, 64, seed=refreshes)
                np.testing.assert_array_equal(np.diff(batch["obs"][..., 0], axis=1), 1)
        assert proc.wait(timeout=60) == 0
        reader.refresh()
        np.testing.assert_array_equal(stored_seqs(reader), np.arange(total))
        check_content(reader)
        assert grew >= 3, "the reader should have seen the store grow while the writer ran"
        assert reader.stats()["chunks"] == total // 50
    finally:
        proc.kill()
        proc.wait()


def test_reader_forgets_evicted_chunks_and_keeps_session_totals(tmp_path):
    writer = ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10, capacity_steps=60)
    for seq in range(40):
        writer.add(make(seq))
    writer.flush()
    reader = ReplayStore(tmp_path, readonly=True)
    np.testing.assert_array_equal(stored_seqs(reader), np.arange(40))
    for seq in range(40, 120):
        writer.add(make(seq))
    writer.flush()
    assert reader.refresh() == 80
    seqs = stored_seqs(reader)
    np.testing.assert_array_equal(seqs, np.arange(seqs[0], 120))
    assert seqs[0] >= 50 and reader.num_steps == writer.num_steps
    assert reader.sessions()[0].steps == 120 and reader.sessions()[0].episodes == 12
    writer.close()
