"""Agent-level behaviour: config loading, determinism, refusing bad batches, acting."""

import numpy as np
import pytest
import torch
from learner_helpers import ACT_DIM, OBS_DIM, TINY, random_batch, tiny_agent

from dreamer_core.algorithms.agent import Agent, straight_through_clip
from dreamer_core.algorithms.objectives import scaled_sum
from dreamer_core.config import AgentConfig, load_agent_config, preset_names
from dreamer_core.distributions import gumbel_noise

torch.set_num_threads(1)


def _params(agent):
    return {k: v.clone() for k, v in agent.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- config ----------------------------------------------------------------------------------
def test_presets_load_and_s_is_the_dmc_recipe():
    assert {"xs", "s", "m", "l"} <= set(preset_names())
    for name in preset_names():
        assert isinstance(load_agent_config(name), AgentConfig)
    s = load_agent_config("s")
    assert (s.deter, s.units, s.layers, s.stoch, s.classes) == (512, 512, 2, 32, 32)
    assert (s.batch_size, s.seq_len, s.train_ratio) == (16, 64, 512)
    assert (s.model_lr, s.actor_lr, s.critic_lr, s.horizon, s.lam) == (1e-4, 3e-5, 3e-5, 15, 0.95)


def test_config_errors_name_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("deter: 64\nunitz: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*unitz"):
        load_agent_config(path)
    path.write_text("deter: -4\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*deter"):
        load_agent_config(str(path))
    with pytest.raises(ValueError, match=r"overrides.*horizon"):
        load_agent_config("xs", {"horizon": 0})
    with pytest.raises(ValueError, match=r"unknown agent preset 'xxl'.*xs"):
        load_agent_config("xxl")
    with pytest.raises(ValueError, match="does not exist"):
        load_agent_config(tmp_path / "missing.yaml")


def test_yaml_path_and_overrides_apply(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("deter: 48\nunits: 40\n")
    config = load_agent_config(path, {"horizon": 7})
    assert (config.deter, config.units, config.horizon, config.name) == (48, 40, 7, "mine")


def test_loss_scales_default_to_the_recipe_and_every_term_needs_one():
    assert load_agent_config("s").loss_scales == {"decoder": 1.0, "reward": 1.0, "continue": 1.0, "kl_dyn": 0.5,
                                                  "kl_rep": 0.1, "ensemble": 1.0, "actor": 1.0, "critic": 1.0}
    changed = load_agent_config("xs", {"loss_scales": {"kl_rep": 0.2}})
    assert (changed.loss_scales["kl_rep"], changed.loss_scales["kl_dyn"]) == (0.2, 0.5)  # the rest keep defaults
    with pytest.raises(ValueError, match=r"loss_scales: .*unknown loss terms \['kl'\]"):
        load_agent_config("xs", {"loss_scales": {"kl": 1.0}})
    with pytest.raises(ValueError, match=r"loss_scales: .*>= 0"):
        load_agent_config("xs", {"loss_scales": {"decoder": -1.0}})
    one = torch.ones(2)
    with pytest.raises(ValueError, match=r"loss terms \['novelty'\] have no scale"):
        scaled_sum({"decoder": one, "novelty": one}, changed.loss_scales)


def test_world_model_loss_is_the_scaled_sum_of_its_terms():
    for scales in ({}, {"kl_dyn": 2.0, "decoder": 0.0}):
        agent = tiny_agent(loss_scales=scales)
        loss, metrics, _ = agent.world_model_loss(agent.to_tensors(random_batch()))
        expected = sum(agent.config.loss_scales[name] * metrics[f"loss/{name}"]
                       for name in ("decoder", "reward", "continue", "kl_dyn", "kl_rep", "ensemble"))
        assert loss.item() == pytest.approx(float(expected), rel=1e-5)


# --- determinism -----------------------------------------------------------------------------
def test_same_seed_same_parameters_after_updates():
    agents = [tiny_agent(seed=7), tiny_agent(seed=7)]
    for agent in agents:
        for i in range(3):
            agent.train_step(random_batch(seed=i))
    assert _same(_params(agents[0]), _params(agents[1]))
    other = tiny_agent(seed=8)
    for i in range(3):
        other.train_step(random_batch(seed=i))
    assert not _same(_params(agents[0]), _params(other))


def test_training_changes_every_trained_network():
    agent = tiny_agent()
    before = _params(agent)
    metrics = agent.train_step(random_batch())
    after = _params(agent)
    for prefix in ("wm.", "actor.", "critic.", "slow_critic."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    assert agent.updates == 1
    assert all(np.isfinite(v) for v in metrics.values())


def test_the_actor_waits_for_its_warmup_while_model_and_critic_learn():
    agent = tiny_agent(actor_warmup_updates=2)
    actor = {k: v for k, v in _params(agent).items() if k.startswith("actor.")}
    for _ in range(2):
        metrics = agent.train_step(random_batch())
        assert "grad_norm/actor" not in metrics
    assert _same(actor, {k: v for k, v in _params(agent).items() if k.startswith("actor.")})
    assert "grad_norm/actor" in agent.train_step(random_batch())
    assert not _same(actor, {k: v for k, v in _params(agent).items() if k.startswith("actor.")})


@torch.no_grad()
def test_a_fresh_actor_can_start_at_action_zero_with_a_chosen_std():
    feat = torch.randn(64, TINY["deter"] + TINY["stoch"] * TINY["classes"])
    mean, std = tiny_agent(actor_init_zero_mean=True, actor_init_std=0.2).actor(feat)
    assert torch.equal(mean, torch.zeros_like(mean))
    torch.testing.assert_close(std, torch.full_like(std, 0.2))
    # DreamerV3's head: a random mean and a std near (max - min) sigmoid(2) + min = 0.89.
    mean, std = tiny_agent(actor_init_zero_mean=False, actor_init_std=None).actor(feat)
    assert mean.abs().max() > 0.01 and 0.7 < std.mean() < 1.0
    with pytest.raises(ValueError, match="actor_init_std"):
        load_agent_config("xs", {"actor_init_std": 1.5})


def test_construction_leaves_global_rng_alone():
    state = torch.get_rng_state()
    tiny_agent(seed=1)
    assert torch.equal(state, torch.get_rng_state())


# --- refusing bad input ----------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value"), [("obs", np.nan), ("reward", np.inf), ("action", -np.inf)])
def test_non_finite_batch_is_refused_and_model_unchanged(key, value):
    agent = tiny_agent()
    agent.train_step(random_batch(seed=1))
    before = _params(agent)
    opt_before = [s["exp_avg"].clone() for s in agent.model_opt.state.values()]
    rng_before = agent.generator.get_state()
    batch = random_batch(seed=2)
    batch[key][1, 3] = value
    with pytest.raises(ValueError, match=rf"batch\['{key}'\].*non-finite"):
        agent.train_step(batch)
    assert _same(before, _params(agent))
    assert all(torch.equal(a, s["exp_avg"]) for a, s in zip(opt_before, agent.model_opt.state.values(), strict=True))
    assert torch.equal(rng_before, agent.generator.get_state())
    assert agent.updates == 1


def test_malformed_batches_are_refused_with_the_key_named():
    agent = tiny_agent()
    batch = random_batch()
    del batch["is_terminal"]
    with pytest.raises(ValueError, match="is_terminal"):
        agent.train_step(batch)
    batch = random_batch()
    batch["action"] = batch["action"][..., :1]
    with pytest.raises(ValueError, match=r"batch\['action'\] has shape"):
        agent.train_step(batch)
    batch = random_batch()
    batch["obs"] = batch["obs"][..., :2]
    with pytest.raises(ValueError, match=r"batch\['obs'\] has shape"):
        agent.train_step(batch)


# --- acting ----------------------------------------------------------------------------------
def test_policy_step_shapes_bounds_and_modes():
    agent = tiny_agent()
    obs = np.ones(OBS_DIM, np.float32)
    action, state = agent.policy_step(obs, None, is_first=True)
    assert action.shape == (ACT_DIM,) and np.all(np.abs(action) <= 1.0)
    assert set(state) == {"h", "z", "prev_action"}
    assert state["h"].shape == (1, TINY["deter"]) and state["z"].shape == (1, TINY["stoch"] * TINY["classes"])
    # Batched acting, and the greedy action of a state is reproducible.
    actions, _ = agent.policy_step(np.ones((3, OBS_DIM), np.float32), None, is_first=True)
    assert actions.shape == (3, ACT_DIM)
    with pytest.raises(ValueError, match="obs has shape"):
        agent.policy_step(np.ones(OBS_DIM + 1), state, is_first=False)
    with pytest.raises(ValueError, match="NaN"):
        agent.policy_step(np.full(OBS_DIM, np.nan), state, is_first=False)


def test_policy_step_uses_the_tick_module_with_agent_noise():
    agent = tiny_agent(seed=2)
    twin = tiny_agent(seed=2)
    obs = np.linspace(-1, 1, OBS_DIM).astype(np.float32)
    a1, s1 = agent.policy_step(obs, None, is_first=True)
    a2, s2 = twin.policy_step(obs, None, is_first=True)
    assert np.array_equal(a1, a2) and torch.equal(s1["h"], s2["h"])
    # explore=False → eps = 0: the action is the tick's mean under the agent's own Gumbel draw.
    state = agent.initial_state(1)
    replay_rng = torch.Generator().set_state(agent.act_generator.get_state())
    greedy, _ = agent.policy_step(obs, state, is_first=False, explore=False)
    gumbel = gumbel_noise((1, agent.wm.rssm.z_dim), replay_rng)
    _, mean, _, _ = agent.policy_tick()(torch.from_numpy(obs)[None], state["h"], state["z"],
                                        state["prev_action"], torch.zeros(1), gumbel, torch.zeros(1, ACT_DIM))
    assert np.array_equal(greedy, mean[0].detach().numpy())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA (every CI and dev machine)")
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA"):
        Agent(OBS_DIM, ACT_DIM, load_agent_config("xs", TINY), device="cuda")


def test_imagine_returns_is_finite_and_leaves_training_rng():
    agent = tiny_agent()
    rng_before = agent.generator.get_state()
    out = agent.imagine_returns(random_batch(), horizon=4)
    assert set(out) == {"return", "value", "advantage", "reward"}
    assert all(np.isfinite(v) for v in out.values())
    assert torch.equal(rng_before, agent.generator.get_state())


def test_straight_through_clip_clips_values_and_passes_gradients_unchanged():
    x = torch.tensor([-3.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    y = straight_through_clip(x)
    assert torch.equal(y.detach(), torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    (y * torch.arange(1.0, 6.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(1.0, 6.0))  # identity inside and outside the box
