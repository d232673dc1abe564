"""Held-out episodes: a training batch never holds a row of one, a held-out batch nothing else, and
the assignment survives reopening, new sessions, eviction and episodes still running."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_support import ACT, OBS, make, session_tag

from dreamer_core.storage import NotEnoughDataError, ReplayStore
from dreamer_core.storage.held_out import episode_score, is_held_out

FRACTION = 0.3
SESSIONS = ("a", "b", "c")


def held_out_rows(sessions: dict[str, int], episode: int) -> set[tuple[float, int]]:
    """(session tag, seq) of every row of a held-out episode, from the rule itself."""
    return {(session_tag(name), seq) for name, count in sessions.items() for seq in range(count)
            if is_held_out("robot", name, seq - seq % episode, FRACTION)}


def rows_of(batch: dict[str, np.ndarray]) -> set[tuple[float, int]]:
    return {(float(tag), int(seq)) for seq, tag in batch["obs"][..., :2].reshape(-1, 2)}


def fill(store: ReplayStore, sessions: dict[str, int], episode: int, start: int = 0) -> None:
    for name, count in sessions.items():
        for seq in range(start, count):
            store.add(make(seq, session=name, episode=episode))


def test_the_rule_is_a_fixed_function_of_the_episode_identity():
    assert episode_score("robot", "a", 40) == episode_score("robot", "a", 40)
    scores = [episode_score("robot", "a", seq) for seq in range(0, 20_000, 10)]
    assert all(0.0 <= s < 1.0 for s in scores)
    assert np.mean(np.array(scores) < FRACTION) == pytest.approx(FRACTION, abs=0.03)
    assert episode_score("robot", "a", 40) != episode_score("robot", "b", 40)
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
    assert stats["held_out"].episodes == len({(tag, seq - seq % 20) for tag, seq in held})


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
@given(st.integers(1, 30), st.integers(0, 3), st.integers(40, 200))
def test_the_assignment_is_stable_across_reopen_new_data_and_eviction(episode, new_sessions, extra):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        first = {"a": 150}
        with ReplayStore(tmp, obs_dim=OBS, act_dim=ACT, chunk_length=16) as store:
            fill(store, first, episode)
            before = held_out_rows(first, episode)
            assert store.split_stats(1, FRACTION)["held_out"].steps == len(before)
            if before:
                assert rows_of(store.sample(400, 1, seed=0, split="held_out", held_out_fraction=FRACTION)) <= before
        more = {"a": first["a"] + extra, **{f"n{i}": extra for i in range(new_sessions)}}
        # Reopened with a capacity that evicts the oldest chunks of "a".
        with ReplayStore(tmp, obs_dim=OBS, act_dim=ACT, chunk_length=16, capacity_steps=200) as store:
            fill(store, {"a": more["a"]}, episode, start=first["a"])
            fill(store, {k: v for k, v in more.items() if k != "a"}, episode)
            reader = ReplayStore(tmp, readonly=True)
            train = rows_of(reader.sample(3000, 1, seed=1, split="train", held_out_fraction=FRACTION))
            reader.close()
    assert train.isdisjoint(before)
    assert train.isdisjoint(held_out_rows(more, episode))


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
        with pytest.raises(ValueError, match=r"held_out_fraction must be in \[0, 1\)"):
            store.sample(2, 10, split="train", held_out_fraction=1.0)
        with pytest.raises(ValueError, match="split must be"):
            store.sample(2, 10, split="test", held_out_fraction=0.2)
