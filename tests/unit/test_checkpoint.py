"""Checkpoints resume bit-exactly and are written atomically."""

import numpy as np
import pytest
import torch
from learner_helpers import random_batch, tiny_agent

from dreamer_core.algorithms.agent import Agent

torch.set_num_threads(1)


def _state(agent):
    return {k: v.clone() for k, v in agent.state_dict().items()}


def test_resume_matches_uninterrupted_run(tmp_path):
    total, k = 5, 2
    straight = tiny_agent(seed=11)
    for i in range(total):
        straight.train_step(random_batch(seed=i))
    straight.policy_step(np.zeros(straight.obs_dim), None, is_first=True)

    first = tiny_agent(seed=11)
    for i in range(k):
        first.train_step(random_batch(seed=i))
    path = tmp_path / "ckpt" / "agent.pt"
    first.save_checkpoint(path)
    del first
    resumed = Agent.load_checkpoint(path)
    assert resumed.updates == k
    for i in range(k, total):
        resumed.train_step(random_batch(seed=i))
    resumed.policy_step(np.zeros(resumed.obs_dim), None, is_first=True)

    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a), [key for key in a if not torch.equal(a[key], b[key])]
    assert torch.equal(straight.generator.get_state(), resumed.generator.get_state())
    assert torch.equal(straight.act_generator.get_state(), resumed.act_generator.get_state())
    assert straight.np_rng.bit_generator.state == resumed.np_rng.bit_generator.state
    assert resumed.return_norm.lo.item() == straight.return_norm.lo.item() != 0.0
    assert (resumed.updates, resumed.policy_steps) == (straight.updates, straight.policy_steps)


def test_checkpoint_contents_and_atomic_write(tmp_path):
    agent = tiny_agent(seed=1)
    agent.train_step(random_batch())
    path = tmp_path / "agent.pt"
    agent.save_checkpoint(path)
    agent.save_checkpoint(path)  # overwriting goes through a temp file too
    assert [p.name for p in tmp_path.iterdir()] == ["agent.pt"]
    payload = torch.load(path, weights_only=True)
    assert set(payload["optimisers"]) == {"model", "actor", "critic"}
    assert any(key.startswith("slow_critic.") for key in payload["modules"])
    assert {"return_norm.lo", "return_norm.hi"} <= set(payload["modules"])
    assert set(payload["rng"]) == {"train", "act", "numpy"}
    assert payload["counters"] == {"updates": 1, "policy_steps": 0}


def test_bad_checkpoints_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Agent.load_checkpoint(tmp_path / "nothing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        Agent.load_checkpoint(junk)
