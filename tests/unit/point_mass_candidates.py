"""Candidate policies on the 2-D point mass, good and bad, for the learning and model-trust tests.

One healthy agent is trained (the ``test_learning`` recipe); the bad candidates are derived from
it, each the way such a model arises:

- **little data**: the same run, copied after :data:`LITTLE_DATA_UPDATES` updates;
- **flipped dynamics**: the healthy agent trained on for :data:`DERIVED_UPDATES` updates on its
  own data with every action negated (a sign error in the action path): its model believes a
  push goes the other way and its actor learns to push accordingly;
- **planted bonus**: the healthy agent whose reward head adds :data:`BONUS` wherever the decoded
  state lies beyond the right wall, where no real state can be (:func:`in_bonus_region`), trained
  on for :data:`PLANTED_BONUS_UPDATES` updates: its actor is trained to seek that wall (measured: it
  then does worse than the healthy agent on real episodes).

Held-out data: fresh episodes no candidate trained on, half with random actions (what the
initial policy does) and half with the healthy policy (what the deployed version does).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config
from dreamer_core.envs.point_mass import PointMass
from dreamer_core.runners.online import SequenceReplay, episode_returns, random_return, train_online
from dreamer_core.transforms import symexp

# The xs model with a smaller batch and faster learning rates so that 750 updates fit the test's time
# budget (the published learning rates need far more updates than a unit test can afford), and a
# discount suited to 50-step episodes. The online loop explores with the actor's own std (there is no
# robot noise here), so the actor starts as DreamerV3's does: random head, std about 0.89.
OVERRIDES = {"batch_size": 8, "seq_len": 32, "horizon": 10, "train_ratio": 128, "model_lr": 1e-3, "actor_lr": 3e-4,
             "critic_lr": 3e-4, "gamma": 0.95, "actor_init_zero_mean": False, "actor_init_std": None}
STEPS, PREFILL = 2000, 500
LITTLE_DATA_UPDATES = 100
DERIVED_UPDATES = 150
# Long enough for the actor to exploit the bonus reliably (docs/model_trust.md#planted-bonus): after 150
# updates the gate promoted it and 3 of 8 five-episode canaries passed it; after 450 none did.
PLANTED_BONUS_UPDATES = 450
# Reward bonus where the decoded x position exceeds BONUS_X: the mass is clipped to [-2, 2], so no real
# row is there, but imagination can extrapolate past the wall.
BONUS, BONUS_X = 5.0, 2.0
HELD_OUT_EPISODES = 12
EVAL_EPISODES, EVAL_SEED = 10, 1000


@dataclass
class PointMassRun:
    """The healthy agent, what it trained on, and the derived candidates (built on demand)."""

    seed: int
    healthy: Agent
    little_data: Agent
    replay: SequenceReplay
    held_out: SequenceReplay
    held_out_episodes: int
    _derived: dict[str, Agent] = field(default_factory=dict)

    def candidate(self, name: str) -> Agent:
        """``healthy``, ``little_data``, ``flipped_dynamics`` or ``planted_bonus``."""
        if name in ("healthy", "little_data"):
            return getattr(self, name)
        if name not in self._derived:
            self._derived[name] = DERIVED[name](self)
        return self._derived[name]


def point_mass_config(**overrides):
    return load_agent_config("xs", {**OVERRIDES, **overrides})


def train_point_mass(seed: int = 0, **overrides) -> PointMassRun:
    """Train the healthy agent (keeping a copy at :data:`LITTLE_DATA_UPDATES`) and record held-out episodes."""
    torch.set_num_threads(1)
    agent = Agent(PointMass.obs_dim, PointMass.act_dim, point_mass_config(**overrides), seed=seed)
    early: list[Agent] = []

    def keep_early(a: Agent) -> None:
        if a.updates == LITTLE_DATA_UPDATES:
            early.append(copy.deepcopy(a))

    replay = train_online(agent, PointMass(seed=seed), STEPS, prefill=PREFILL, seed=seed, progress=False,
                          after_update=keep_early)
    held_out = record_episodes(agent, HELD_OUT_EPISODES, seed=seed + 10_000)
    return PointMassRun(seed, agent, early[0], replay, held_out, HELD_OUT_EPISODES)


def record_episodes(agent: Agent, episodes: int, seed: int) -> SequenceReplay:
    """Fresh point-mass episodes: the first half with random actions, the rest with the agent's
    exploring policy (the rows as ``train_online`` stores them)."""
    env, rng = PointMass(), np.random.default_rng(seed)
    replay = SequenceReplay(agent.obs_dim, agent.act_dim, episodes * (env.episode_len + 1))
    for episode in range(episodes):
        obs, state, reward, first, done = env.reset(seed=seed + episode), None, 0.0, True, False
        while not done:
            if episode < episodes // 2:
                action = rng.uniform(-1, 1, agent.act_dim).astype(np.float32)
            else:
                action, state = agent.policy_step(obs, state, is_first=first)
            replay.add(obs=obs, action=action, reward=reward, is_first=first, is_last=False, is_terminal=False)
            obs, reward, terminated, truncated = env.step(action)
            first, done = False, terminated or truncated
        replay.add(obs=obs, action=np.zeros(agent.act_dim, np.float32), reward=reward, is_first=False,
                   is_last=True, is_terminal=terminated)
    return replay


def train_on(agent: Agent, replay: SequenceReplay, updates: int, seed: int, flip_actions: bool = False) -> Agent:
    c = agent.config
    rng = np.random.default_rng(seed)
    for _ in range(updates):
        batch = replay.sample(c.batch_size, c.seq_len, rng)
        if flip_actions:
            batch["action"] = -batch["action"]
        agent.train_step(batch)
    return agent


def flipped_dynamics(run: PointMassRun) -> Agent:
    return train_on(copy.deepcopy(run.healthy), run.replay, DERIVED_UPDATES, run.seed + 1, flip_actions=True)


def in_bonus_region(agent: Agent, feat: torch.Tensor) -> torch.Tensor:
    """1 where the state decoded from model features lies in the bonus region, else 0."""
    return (symexp(agent.wm.decoder(feat)[..., 0].float()) > BONUS_X).float()


def planted_bonus(run: PointMassRun) -> Agent:
    agent = copy.deepcopy(run.healthy)
    own = agent.wm.predict_reward
    # An instance attribute: imagination, the actor's returns and every trust measure read it.
    agent.wm.predict_reward = lambda feat: own(feat) + BONUS * in_bonus_region(agent, feat)
    return train_on(agent, run.replay, PLANTED_BONUS_UPDATES, run.seed + 2)


DERIVED = {"flipped_dynamics": flipped_dynamics, "planted_bonus": planted_bonus}


def real_episodes(agent: Agent, episodes: int, seed: int) -> list[tuple[float, int]]:
    """(return, rows) of greedy real point-mass episodes from the start states of ``seed`` onwards.

    The policy still samples its latent state (from the agent's action generator, which every
    earlier policy step advanced), so the generator is reseeded first: the same agent always
    gets the same figures, whatever ran before."""
    agent.act_generator.manual_seed(seed)
    return episode_returns(agent, PointMass(), episodes, seed)


def real_return(agent: Agent) -> float:
    """Mean greedy return over real point-mass episodes (fixed start states and latent draws)."""
    return float(np.mean([ret for ret, _ in real_episodes(agent, EVAL_EPISODES, EVAL_SEED)]))


def random_policy_return() -> float:
    return random_return(PointMass(), PointMass.act_dim, episodes=EVAL_EPISODES, seed=EVAL_SEED)
