"""RSSM and world-model behaviour: resets, the one-tick module, and gradient isolation."""

import numpy as np
import pytest
import torch
from learner_helpers import ACT_DIM, OBS_DIM, random_batch, tiny_agent

from dreamer_core.distributions import gumbel_noise

torch.set_num_threads(1)


def _observe(agent, data, gumbel):
    wm = agent.wm
    return wm.rssm.observe(wm.encode(data["obs"]), data["action"], data["is_first"], gumbel)


def _noise(agent, data, seed):
    rssm = agent.wm.rssm
    shape = (*data["obs"].shape[:2], rssm.stoch, rssm.classes)
    return gumbel_noise(shape, torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_is_first_mid_sequence_resets_state():
    agent = tiny_agent()
    data = agent.to_tensors(random_batch())
    gumbel = _noise(agent, data, 1)
    full = _observe(agent, data, gumbel)
    k = data["obs"].shape[0] // 2  # random_batch starts an episode here
    tail = _observe(agent, {key: v[k:] for key, v in data.items()}, gumbel[k:])
    assert torch.equal(full["h"][k], agent.wm.rssm.initial_h(data["obs"].shape[1]))
    assert torch.equal(full["h"][k:], tail["h"])
    assert torch.equal(full["z"][k:], tail["z"])
    # Without the reset flag the state after k depends on the history before it.
    no_reset = dict(data, is_first=torch.zeros_like(data["is_first"]))
    carried = _observe(agent, no_reset, gumbel)
    assert not torch.allclose(carried["h"][k], full["h"][k])


@torch.no_grad()
def test_policy_tick_loop_matches_observe():
    """Driving the exported one-tick module step by step, fed the action the robot executed (here
    half the one it returned, as a rate limit would leave it), reproduces observe() on that replay."""
    agent = tiny_agent(seed=3)
    tick = agent.policy_tick()
    rng = np.random.default_rng(0)
    steps, rssm = 12, agent.wm.rssm
    obs = torch.tensor(rng.normal(size=(steps, 1, OBS_DIM)), dtype=torch.float32)
    is_first = torch.zeros(steps, 1)
    is_first[0] = is_first[7] = 1.0
    gumbel = gumbel_noise((steps, 1, rssm.stoch, rssm.classes), torch.Generator().manual_seed(5))
    eps = torch.tensor(rng.normal(size=(steps, 1, ACT_DIM)), dtype=torch.float32)
    state = agent.initial_state(1)
    h, z, prev = state["h"], state["z"], state["prev_action"]
    hs, zs, executed = [], [], []
    for t in range(steps):
        action, mean, h, z = tick(obs[t], h, z, prev, is_first[t], gumbel[t].flatten(-2), eps[t])
        assert torch.all(action.abs() <= 1.0) and torch.all(mean.abs() < 1.0)
        hs.append(h)
        zs.append(z)
        prev = 0.5 * action
        executed.append(prev)
    post = _observe(agent, {"obs": obs, "action": torch.stack(executed), "is_first": is_first}, gumbel)
    assert torch.equal(post["h"], torch.stack(hs))
    assert torch.equal(post["z"], torch.stack(zs))


def _grads(module):
    return [p.grad for p in module.parameters()]


def _has_grad(module):
    return any(g is not None and g.abs().sum() > 0 for g in _grads(module))


def _no_grad(module):
    return all(g is None for g in _grads(module))


def test_world_model_loss_reaches_only_world_model():
    agent = tiny_agent()
    loss, metrics, _ = agent.world_model_loss(agent.to_tensors(random_batch()))
    loss.backward()
    assert _has_grad(agent.wm)
    assert _no_grad(agent.actor) and _no_grad(agent.critic) and _no_grad(agent.slow_critic)
    assert metrics["loss/kl_dyn"] >= 1.0 and metrics["loss/kl_rep"] >= 1.0  # free bits floor


@pytest.mark.parametrize("which", ["actor", "critic"])
def test_behaviour_losses_reach_only_their_own_network(which):
    agent = tiny_agent()
    data = agent.to_tensors(random_batch())
    _, _, post = agent.world_model_loss(data)
    start = {"h": post["h"].flatten(0, 1), "z": post["z"].flatten(0, 1),
             "cont": 1.0 - data["is_terminal"].flatten(0, 1)}
    actor_loss, critic_loss, _ = agent.behaviour_losses(start)
    agent.zero_grad(set_to_none=True)
    (actor_loss if which == "actor" else critic_loss).backward()
    assert _no_grad(agent.wm)
    own, other = (agent.actor, agent.critic) if which == "actor" else (agent.critic, agent.actor)
    assert _has_grad(own)
    assert _no_grad(other)
    # The world model stays trainable afterwards (freezing is scoped to graph construction).
    assert all(p.requires_grad for p in agent.wm.parameters())


@torch.no_grad()
def test_fresh_heads_predict_zero_reward_and_value():
    agent = tiny_agent()
    data = agent.to_tensors(random_batch())
    post = _observe(agent, data, _noise(agent, data, 0))
    feat = agent.wm.features(post["h"], post["z"])
    assert agent.wm.predict_reward(feat).abs().max().item() == 0.0
    assert agent.critic.value(feat).abs().max().item() == 0.0


def test_open_loop_errors_shrink_as_the_model_learns_a_constant_reward():
    """Open-loop reward error is measured per k, skips episode starts, and falls with training."""
    from dreamer_core.algorithms.trust.skill import open_loop_errors

    agent = tiny_agent(model_lr=1e-2)
    batch = random_batch()
    batch["reward"][:] = 2.0
    before = open_loop_errors(agent, batch, k_max=3)
    assert before["k"] == [1, 2, 3]
    # 4 sequences × anchors t = 0..4, minus the anchors at an episode start (t = 0, 4) and the windows
    # that cross the one at t = 4.
    assert before["count"] == [8, 4, 0]
    assert before["reward_model"][0] == pytest.approx(2.0)  # zero-initialised reward head
    for _ in range(40):
        agent.train_step(batch)
    after = open_loop_errors(agent, batch, k_max=3)
    assert max(after["reward_model"][:2]) < 0.25 * min(before["reward_model"][:2])
    with pytest.raises(ValueError, match="k_max"):
        open_loop_errors(agent, batch, k_max=8)
