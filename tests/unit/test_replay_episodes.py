"""Episodes read from a store: boundaries across chunks and sessions, returns, versions, cut episodes."""

from __future__ import annotations

from replay_support import make

from dreamer_core.storage import ReplayStore
from dreamer_core.storage.episodes import episodes


def test_episodes_span_chunks_and_carry_their_return_version_and_end(tmp_path):
    # Episodes of 10 steps, chunks of 7 rows: every episode but the first crosses a chunk boundary.
    with ReplayStore(tmp_path, obs_dim=6, act_dim=3, chunk_length=7) as store:
        for seq in range(35):  # 3 whole episodes, then 5 steps of a 4th still running
            store.add(make(seq, is_terminal=seq == 19, policy_version=1 + seq // 20))
        found = list(episodes(store.iter_steps()))
    assert [(e.first_seq, e.last_seq, e.steps) for e in found] == [(0, 9, 10), (10, 19, 10), (20, 29, 10),
                                                                   (30, 34, 5)]
    assert [e.complete for e in found] == [True, True, True, False]
    assert [e.terminal for e in found] == [False, True, False, False]
    assert [e.policy_version for e in found] == [1, 1, 2, 2]
    assert found[0].ret == sum(seq % 7 for seq in range(10))
    assert found[1].ret == sum(seq % 7 for seq in range(10, 20))
    assert found[0].start_stamp == make(0).stamp and found[0].end_stamp == make(9).stamp
    assert not any(e.mixed_versions for e in found)


def test_a_swap_mid_episode_a_gap_and_a_second_session(tmp_path):
    with ReplayStore(tmp_path, obs_dim=6, act_dim=3) as store:
        for seq in range(10):
            store.add(make(seq, policy_version=3 if seq >= 6 else 2))
        for seq in (10, 11, 12, 15, 16):  # seqs 13-14 never arrived: the store restarts the episode at 15
            store.add(make(seq, is_last=False))
        for seq in range(4):
            store.add(make(seq, session="s1"))
        found = list(episodes(store.iter_steps()))
    assert [(e.session_id, e.first_seq, e.last_seq, e.complete) for e in found] == [
        ("s0", 0, 9, True), ("s0", 10, 12, False), ("s0", 15, 16, False), ("s1", 0, 3, False)]
    assert found[0].policy_version == 2 and found[0].mixed_versions
