"""Checkpoints resume bit-exactly (every RNG included), keep the previous checkpoint when a save
fails, and carry the caller's extra state."""

import numpy as np
import pytest
import torch
from learner_helpers import random_batch, tiny_agent

from dreamer_core.algorithms.agent import Agent, read_checkpoint

torch.set_num_threads(1)


def _state(agent):
    return {k: v.clone() for k, v in agent.state_dict().items()}


def _use_every_rng(agent, seed):
    """One training update (training generator), two acting ticks (acting generator) and a draw
    from the numpy generator (the online loop's sampling RNG); returns what the draws produced."""
    agent.train_step(random_batch(seed=seed))
    action, state = agent.policy_step(np.full(agent.obs_dim, 0.1 * seed, np.float32), None, is_first=True)
    action2, _ = agent.policy_step(np.ones(agent.obs_dim, np.float32), state, is_first=False)
    return np.concatenate([action, action2, agent.np_rng.random(3)])


def test_resume_continues_bit_identically_with_every_rng_advanced(tmp_path):
    total, k = 5, 2
    straight = tiny_agent(seed=11)
    straight_draws = [_use_every_rng(straight, i) for i in range(total)]

    first = tiny_agent(seed=11)
    first_draws = [_use_every_rng(first, i) for i in range(k)]
    path = tmp_path / "ckpt" / "agent.pt"
    first.save_checkpoint(path)
    del first
    resumed = Agent.load_checkpoint(path)
    assert (resumed.updates, resumed.policy_steps) == (k, 2 * k)
    resumed_draws = [_use_every_rng(resumed, i) for i in range(k, total)]

    # Every RNG was advanced before the save, so a generator restored to its seed (or not restored)
    # would make the resumed actions, numpy draws or parameters differ.
    np.testing.assert_array_equal(np.stack(first_draws + resumed_draws), np.stack(straight_draws))
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a), [key for key in a if not torch.equal(a[key], b[key])]
    assert resumed.return_norm.lo.item() == straight.return_norm.lo.item() != 0.0
    assert (resumed.updates, resumed.policy_steps) == (straight.updates, straight.policy_steps)


@pytest.mark.parametrize("rng", ["train", "act", "numpy"])
def test_each_rng_restored_matters(tmp_path, rng):
    """The resume test can fail: with any one RNG back at its seed the continued run differs."""
    agent = tiny_agent(seed=11)
    _use_every_rng(agent, 0)
    agent.save_checkpoint(tmp_path / "agent.pt")
    resumed, reseeded, fresh = Agent.load_checkpoint(tmp_path / "agent.pt"), Agent.load_checkpoint(
        tmp_path / "agent.pt"), tiny_agent(seed=11)
    if rng == "train":
        reseeded.generator.set_state(fresh.generator.get_state())
    elif rng == "act":
        reseeded.act_generator.set_state(fresh.act_generator.get_state())
    else:
        reseeded.np_rng = fresh.np_rng
    assert not np.array_equal(_use_every_rng(resumed, 1), _use_every_rng(reseeded, 1))


def test_overwrite_loads_the_newest_and_a_failed_save_keeps_the_previous(tmp_path, monkeypatch):
    path = tmp_path / "agent.pt"
    agent = tiny_agent(seed=1)
    agent.train_step(random_batch(seed=0))
    agent.save_checkpoint(path, extra={"learner": {"policy_version": 1}})
    agent.train_step(random_batch(seed=1))
    agent.save_checkpoint(path, extra={"learner": {"policy_version": 2}})
    saved = _state(agent)
    payload = read_checkpoint(path)
    assert payload["counters"]["updates"] == 2 and payload["extra"] == {"learner": {"policy_version": 2}}

    agent.train_step(random_batch(seed=2))

    def crash_mid_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", crash_mid_save)
    with pytest.raises(OSError, match="No space"):
        agent.save_checkpoint(path, extra={"learner": {"policy_version": 3}})
    monkeypatch.undo()
    kept = Agent.load_checkpoint(path)
    assert kept.updates == 2 and read_checkpoint(path)["extra"]["learner"]["policy_version"] == 2
    assert all(torch.equal(saved[key], value) for key, value in kept.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["agent.pt"]


def test_bad_checkpoints_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Agent.load_checkpoint(tmp_path / "nothing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        Agent.load_checkpoint(junk)
    old = tmp_path / "old.pt"
    torch.save({"format": 1}, old)
    with pytest.raises(ValueError, match="format 1; this version reads format 3"):
        Agent.load_checkpoint(old)
