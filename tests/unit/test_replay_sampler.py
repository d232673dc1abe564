"""Replay sampling: layout, episode boundaries, no mixed sessions, determinism, statistics, memory budget."""

from __future__ import annotations

import numpy as np
import pytest
from replay_support import ACT, OBS, make, session_tag

from dreamer_core.storage import NotEnoughDataError, ReplayStore


def filled(path, sessions: dict[str, int], chunk_length: int = 32, **kw) -> ReplayStore:
    store = ReplayStore(path, obs_dim=OBS, act_dim=ACT, chunk_length=chunk_length, **kw)
    for name, count in sessions.items():
        for seq in range(count):
            store.add(make(seq, session=name))
    return store


def test_batch_layout_and_episode_boundaries(tmp_path):
    with filled(tmp_path, {"s0": 300}) as s:
        batch = s.sample(16, 64, seed=3)
    assert batch["obs"].shape == (16, 64, OBS) and batch["obs"].dtype == np.float32
    assert batch["action"].shape == (16, 64, ACT) and batch["action"].dtype == np.float32
    for key in ("reward", "is_first", "is_last", "is_terminal"):
        assert batch[key].shape == (16, 64)
    assert batch["reward"].dtype == np.float32 and batch["is_first"].dtype == bool
    seq = batch["obs"][..., 0].astype(int)
    np.testing.assert_array_equal(np.diff(seq, axis=1), 1)  # contiguous steps, across chunk borders too
    np.testing.assert_array_equal(batch["action"][..., 0], -seq)
    np.testing.assert_array_equal(batch["reward"], seq % 7)
    expected_first = seq % 10 == 0
    expected_first[:, 0] = True  # every sequence starts a fresh state
    np.testing.assert_array_equal(batch["is_first"], expected_first)
    np.testing.assert_array_equal(batch["is_last"], seq % 10 == 9)


def test_sequences_never_mix_sessions_and_are_deterministic(tmp_path):
    with filled(tmp_path, {"a": 70, "b": 90, "c": 5}) as s:
        batch = s.sample(64, 40, seed=11)
        again = s.sample(64, 40, rng=np.random.default_rng(11))
        other = s.sample(64, 40, seed=12)
    tags = batch["obs"][..., 1]
    assert (tags == tags[:, :1]).all()
    assert set(np.unique(tags)) == {session_tag("a"), session_tag("b")}  # "c" is too short for 40 steps
    for key in batch:
        np.testing.assert_array_equal(batch[key], again[key])
    assert not np.array_equal(batch["obs"], other["obs"])


def test_not_enough_data_is_a_clear_error(tmp_path):
    with filled(tmp_path, {"a": 30, "b": 20}) as s:
        with pytest.raises(NotEnoughDataError, match="length 31: the longest session holds 30 steps"):
            s.sample(4, 31)
        with pytest.raises(ValueError, match="recency"):
            s.sample(4, 10, recency=1.5)


def chi_square_uniform(counts: np.ndarray) -> tuple[float, float]:
    """Chi-square statistic against uniform and a loose upper bound (mean + 6 sd) for it."""
    expected = counts.sum() / len(counts)
    stat = float(((counts - expected) ** 2 / expected).sum())
    dof = len(counts) - 1
    return stat, dof + 6 * np.sqrt(2 * dof)


def draw_starts(store: ReplayStore, length: int, n: int, recency: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    batches = [store.sample(500, length, rng=rng, recency=recency) for _ in range(n // 500)]
    return np.concatenate([b["obs"][:, 0, :2] for b in batches])  # (seq, session tag) of each start


def test_uniform_over_all_valid_starts(tmp_path):
    with filled(tmp_path, {"a": 150, "b": 350}) as s:
        starts = draw_starts(s, 50, 40_000)
    a = starts[:, 1] == session_tag("a")
    # Sessions are picked in proportion to their valid starts (101 and 301).
    assert a.mean() == pytest.approx(101 / 402, abs=0.015)
    for mask, valid in ((a, 101), (~a, 301)):
        counts = np.bincount(starts[mask, 0].astype(int), minlength=valid)
        assert len(counts) == valid  # no start beyond the last valid one
        stat, bound = chi_square_uniform(counts)
        assert stat < bound


@pytest.mark.parametrize(("recency", "mean_rank"), [(0.0, 1 / 2), (0.5, 7 / 12), (1.0, 2 / 3)])
def test_recency_mix_favours_new_data(tmp_path, recency, mean_rank):
    with filled(tmp_path, {"s0": 1000}) as s:
        starts = draw_starts(s, 1, 20_000, recency=recency)[:, 0]
    # Rank in [0, 1): uniform has mean 1/2, the recency ramp (p ∝ rank) 2/3, the mix in between.
    rank = starts / 1000
    assert rank.mean() == pytest.approx(mean_rank, abs=0.01)
    if recency == 1.0:
        newest, oldest = (rank >= 0.9).mean(), (rank < 0.1).mean()
        assert newest == pytest.approx(0.19, abs=0.015) and oldest == pytest.approx(0.01, abs=0.005)


def test_memory_budget_maps_chunks_instead_of_holding_them(tmp_path):
    filled(tmp_path, {"a": 500, "b": 300}).close()
    with ReplayStore(tmp_path, readonly=True) as full, ReplayStore(
        tmp_path, readonly=True, memory_budget_bytes=10_000
    ) as mapped:
        assert mapped.stats()["memory_bytes"] < full.stats()["memory_bytes"] / 3
        for key, value in full.sample(16, 64, seed=5).items():
            np.testing.assert_array_equal(mapped.sample(16, 64, seed=5)[key], value)
