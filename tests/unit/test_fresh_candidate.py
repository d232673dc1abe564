"""A fresh candidate is as safe as the initial policy on the sim A1.

Before the xs preset's actor started at the default pose with a small std and the robot explored
with its own noise, every promoted A1 candidate explored with the actor's starting std (about
0.89) and fell within seconds. Here an untrained xs agent is exported, loaded by the robot's ONNX
runtime and promoted by the robot's policy manager after version 0's episodes; its canary runs on
the MuJoCo A1 through the control node's tick logic (rate limit, soft start, faults) with
exploration on, and must neither fall nor be rolled back.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config
from dreamer_core.control import Controller, InitialPolicy, PolicyManager
from dreamer_core.deploy import PolicyRuntime
from dreamer_core.deploy.bundle import build_bundle
from dreamer_core.deploy.export import export_agent
from dreamer_core.envs.a1_mujoco import A1MujocoEnv
from dreamer_core.envs.closed_loop import run_episode
from dreamer_core.robots.config import parse_robot_config, resolve_config_path

# Short episodes keep the test quick; the canary judges complete episodes of any length.
EPISODE_SECONDS = 4.0


# Each shipped A1 task with the preset its learner runs and the robot's exploration amplitude.
TASKS = {"a1_sim": ("xs", 0.3), "a1_sim_trot": ("a1_trot", 0.8)}


@pytest.fixture(scope="module", params=sorted(TASKS))
def config(request):
    data = yaml.safe_load(resolve_config_path(request.param).read_text())
    data["episode"] = {"max_seconds": EPISODE_SECONDS}
    return parse_robot_config(data, source=f"{request.param}.yaml (short episodes)")


def untrained_candidate(config, seed: int) -> PolicyRuntime:
    preset, _ = TASKS[config.robot_id]
    agent = Agent(config.obs_dim, config.act_dim, load_agent_config(preset), seed=seed)
    bundle = build_bundle(export_agent(agent), config.policy_spec(), version=1, training_step=0, preset=preset,
                          private_key=None)
    return PolicyRuntime.load(bundle, expected_spec=config.policy_spec(), public_key=None, allow_unsigned=True)


def run_episodes(ctrl: Controller, env: A1MujocoEnv, until, limit: int) -> list:
    """Episodes until ``until()`` holds (at most ``limit``), the robot reset after each as the sim
    node's reset service does. Returns every transition."""
    transitions, episodes = [], 0
    while not until() and episodes < limit:
        transitions += run_episode(ctrl, env)
        env.reset_physics()
        episodes += 1
    return transitions


@pytest.mark.parametrize("seed", [0, 1])
def test_an_untrained_candidate_passes_its_canary_on_the_sim_a1_without_falling(config, seed):
    manager = PolicyManager(config.robot_id, canary=config.canary)
    ctrl = Controller(config, session_id="fresh", explore=True, seed=seed, policies=manager,
                      initial_policy=InitialPolicy(config.act_dim, "random", amplitude=TASKS[config.robot_id][1],
                                                   seed=seed))
    env = A1MujocoEnv(config, seed=seed, randomize=True)
    baseline = config.canary.min_baseline_episodes
    v0 = run_episodes(ctrl, env, lambda: False, baseline)
    assert manager.accept(untrained_candidate(config, seed))
    v1 = run_episodes(ctrl, env, lambda: manager.status()["last_verdict"], config.canary.episodes + 2)
    assert sum(t.is_last for t in v0) == baseline and not any(t.is_terminal for t in v0)
    candidate = [t for t in v1 if t.policy_version == 1]
    assert candidate and not any(t.is_terminal for t in candidate), "the fresh candidate fell"
    # It explored (the robot's noise around its mean) and stood as v0 did: the canary passed.
    actions = np.stack([t.action for t in candidate if not t.is_last])
    assert actions.std() > 0.02
    verdict = manager.status()["last_verdict"]
    assert verdict.startswith("v1 passed"), verdict
