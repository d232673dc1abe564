"""Held-out blocks (pieces of episodes, or whole ones): a training batch never holds a row of one, a
held-out batch nothing else, and the assignment survives reopening, new sessions, eviction and
episodes still running."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_support import ACT, OBS, make, session_tag

from dreamer_core.storage import NotEnoughDataError, ReplayStore
from dreamer_core.storage.held_out import block_score, is_held_out
from dreamer_core.storage.sampler import strided_starts

FRACTION = 0.3
SESSIONS = ("a", "b", "c")


def block_start(seq: int, episode: int, block: int | None) -> int:
    """The seq a row's block starts at: its episode's first row, or the last multiple of ``block`` after it."""
    start = seq - seq % episode
    return start if block is None else max(start, seq - seq % block)


def held_out_rows(sessions: dict[str, int], episode: int, block: int | None = None) -> set[tuple[float, int]]:
    """(session tag, seq) of every row of a held-out block, from the rule itself."""
    return {(session_tag(name), seq) for name, count in sessions.items() for seq in range(count)
            if is_held_out("robot", name, block_start(seq, episode, block), FRACTION)}


def rows_of(batch: dict[str, np.ndarray]) -> set[tuple[float, int]]:
    return {(float(tag), int(seq)) for seq, tag in batch["obs"][..., :2].reshape(-1, 2)}


def fill(store: ReplayStore, sessions: dict[str, int], episode: int, start: int = 0) -> None:
    for name, count in sessions.items():
        for seq in range(start, count):
            store.add(make(seq, session=name, episode=episode))


def test_the_rule_is_a_fixed_function_of_the_block_identity():
    assert block_score("robot", "a", 40) == block_score("robot", "a", 40)
    scores = [block_score("robot", "a", seq) for seq in range(0, 20_000, 10)]
    assert all(0.0 <= s < 1.0 for s in scores)
    assert np.mean(np.array(scores) < FRACTION) == pytest.approx(FRACTION, abs=0.03)
    assert block_score("robot", "a", 40) != block_score("robot", "b", 40)
    assert not is_held_out("robot", "a", 40, 0.0)


def test_training_batches_never_touch_a_held_out_episode(tmp_path):
    sessions = {"a": 400, "b": 250, "c": 333}  # "c" ends inside an episode that is still running
    held = held_out_rows(sessions, episode=20)
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=32) as store:
        fill(store, sessions, episode=20)
        train = store.sample(2000, 8, seed=1, split="train", held_out_fraction=FRACTION)
        held_out = store.sample(2000, 8, seed=2, split="held_out", held_out_fraction=FRACTION)
        stats = store.split_stats(8, FRACTION)
    assert rows_of(train).isdisjoint(held)
    assert rows_of(held_out) <= held
    # Both parts are drawn from all over the store, windows of held-out data included.
    assert len(rows_of(held_out)) > 0.8 * len(held)
    assert len(rows_of(train)) > 0.8 * (sum(sessions.values()) - len(held))
    assert stats["held_out"].steps == len(held)
    assert stats["train"].steps + stats["held_out"].steps == sum(sessions.values())
    assert stats["held_out"].blocks == len({(tag, seq - seq % 20) for tag, seq in held})


def test_long_episodes_are_held_out_in_blocks(tmp_path):
    sessions = {"a": 1000, "b": 730}  # episodes of 300 steps cut into blocks of 64 (an episode start splits one)
    held = held_out_rows(sessions, episode=300, block=64)
    whole = held_out_rows(sessions, episode=300)
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=32) as store:
        fill(store, sessions, episode=300)
        train = store.sample(3000, 8, seed=1, split="train", held_out_fraction=FRACTION, held_out_block_steps=64)
        held_out = store.sample(3000, 8, seed=2, split="held_out", held_out_fraction=FRACTION,
                                held_out_block_steps=64)
        stats = store.split_stats(8, FRACTION, held_out_block_steps=64)
        whole_stats = store.split_stats(8, FRACTION)
    assert rows_of(train).isdisjoint(held) and rows_of(held_out) <= held
    assert len(rows_of(held_out)) > 0.8 * len(held)
    blocks = {(tag, block_start(seq, 300, 64)) for tag, seq in held}
    assert stats["held_out"].steps == len(held) and stats["held_out"].blocks == len(blocks)
    # Seven whole episodes are at most 7 held-out units; their 33 blocks give about FRACTION of 33.
    assert whole_stats["held_out"].steps == len(whole) and whole_stats["held_out"].blocks <= 7
    assert 4 <= len(blocks) <= 16
    # A block that starts an episode has the episode's identity: the same draw as the whole episode.
    for tag, seq in {(t, s - s % 300) for t, s in held | whole}:
        assert ((tag, seq) in held) == ((tag, seq) in whole)


def test_windows_never_cross_from_one_part_into_the_other(tmp_path):
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=16) as store:
        fill(store, {"a": 600}, episode=10)
        held = held_out_rows({"a": 600}, episode=10)
        # Longer than an episode: a window spans consecutive episodes of its part only.
        for split, inside in (("train", False), ("held_out", True)):
            batch = store.sample(500, 25, seed=0, split=split, held_out_fraction=FRACTION)
            for window in batch["obs"][..., :2]:
                assert all(((float(t), int(s)) in held) == inside for s, t in window)


@settings(max_examples=10)
@given(st.integers(1, 30), st.integers(0, 3), st.integers(40, 200), st.sampled_from([None, 7]))
def test_the_assignment_is_stable_across_reopen_new_data_and_eviction(episode, new_sessions, extra, block):
    import tempfile

    split = {"held_out_fraction": FRACTION, "held_out_block_steps": block}
    with tempfile.TemporaryDirectory() as tmp:
        first = {"a": 150}
        with ReplayStore(tmp, obs_dim=OBS, act_dim=ACT, chunk_length=16) as store:
            fill(store, first, episode)
            before = held_out_rows(first, episode, block)
            assert store.split_stats(1, FRACTION, block)["held_out"].steps == len(before)
            if before:
                assert rows_of(store.sample(400, 1, seed=0, split="held_out", **split)) <= before
        more = {"a": first["a"] + extra, **{f"n{i}": extra for i in range(new_sessions)}}
        # Reopened with a capacity that evicts the oldest chunks of "a".
        with ReplayStore(tmp, obs_dim=OBS, act_dim=ACT, chunk_length=16, capacity_steps=200) as store:
            fill(store, {"a": more["a"]}, episode, start=first["a"])
            fill(store, {k: v for k, v in more.items() if k != "a"}, episode)
            reader = ReplayStore(tmp, readonly=True)
            train = rows_of(reader.sample(3000, 1, seed=1, split="train", **split))
            reader.close()
    assert train.isdisjoint(before)
    assert train.isdisjoint(held_out_rows(more, episode, block))


def test_rows_whose_episode_start_was_evicted_are_in_neither_part(tmp_path):
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=10, capacity_steps=60) as store:
        fill(store, {"a": 95}, episode=25)
        oldest = min(seq for _, seq in rows_of(store.sample(3000, 1, seed=0)))
        assert oldest % 25 != 0  # the oldest stored episode lost its first rows
        first_start = oldest + 25 - oldest % 25
        stats = store.split_stats(1, FRACTION)
        drawn = set()
        for split in ("train", "held_out"):
            if stats[split].windows:
                drawn |= rows_of(store.sample(3000, 1, seed=0, split=split, held_out_fraction=FRACTION))
    assert min(seq for _, seq in drawn) == first_start
    assert stats["train"].steps + stats["held_out"].steps == 95 - first_start


def test_errors_name_the_problem(tmp_path):
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT) as store:
        fill(store, {"a": 40}, episode=40)
        fraction = next(f for f in (0.1, 0.5, 0.9) if not is_held_out("robot", "a", 0, f))
        with pytest.raises(NotEnoughDataError, match="no 10 consecutive held_out steps"):
            store.sample(2, 10, split="held_out", held_out_fraction=fraction)
        with pytest.raises(ValueError, match="needs held_out_fraction"):
            store.sample(2, 10, split="train")
        with pytest.raises(ValueError, match="held_out_block_steps must be >= 1"):
            store.split_stats(10, 0.2, held_out_block_steps=0)
        with pytest.raises(ValueError, match=r"held_out_fraction must be in \[0, 1\)"):
            store.sample(2, 10, split="train", held_out_fraction=1.0)
        with pytest.raises(ValueError, match="split must be"):
            store.sample(2, 10, split="test", held_out_fraction=0.2)


def test_strided_starts_count_from_the_first_start_of_each_run():
    starts = np.array([0, 1, 2, 3, 4, 5, 10, 11, 12, 20])
    assert strided_starts(starts, 2).tolist() == [0, 2, 4, 10, 12, 20]
    assert strided_starts(starts, 1).tolist() == starts.tolist()
    assert strided_starts(np.array([], dtype=np.int64), 3).tolist() == []
    with pytest.raises(ValueError, match="stride must be >= 1"):
        strided_starts(starts, 0)


def test_fixed_windows_are_every_strided_window_of_the_part_newest_first(tmp_path):
    sessions = {"a": 400, "b": 250}
    held = held_out_rows(sessions, episode=20)
    split = {"split": "held_out", "held_out_fraction": FRACTION}
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=32) as store:
        fill(store, sessions, episode=20)
        every = store.windows(8, stride=4, limit=10_000, **split)
        again = store.windows(8, stride=4, limit=10_000, **split)
        newest = store.windows(8, stride=4, limit=5, **split)
        with pytest.raises(NotEnoughDataError, match="no 500 consecutive held_out steps"):
            store.windows(500, stride=4, limit=5, **split)
        with pytest.raises(ValueError, match="length, stride and limit must be >= 1"):
            store.windows(8, stride=0, limit=5, **split)
        with pytest.raises(ValueError, match="split must be 'train' or 'held_out'"):
            store.windows(8, stride=4, limit=5, split="all", held_out_fraction=FRACTION)
    # The same rows give the same windows: nothing is drawn.
    for key in every:
        np.testing.assert_array_equal(every[key], again[key])
    firsts = [(float(w[0, 1]), int(w[0, 0])) for w in every["obs"][..., :2]]
    # Held-out rows only, and nearly all of them (a run's last rows may follow its last start).
    assert rows_of(every) <= held and len(rows_of(every)) > 0.95 * len(held)
    # Within one run of consecutive window starts they are `stride` rows apart.
    by_session = {}
    for tag, seq in firsts:
        by_session.setdefault(tag, []).append(seq)
    for seqs in by_session.values():
        gaps = np.diff(seqs)
        assert set(gaps[gaps < 8].tolist()) <= {4}
    # The limit keeps the newest: the last windows of the newest session, in order.
    np.testing.assert_array_equal(newest["obs"], every["obs"][-5:])
    assert {float(t) for t in newest["obs"][:, 0, 1]} == {session_tag("b")}
