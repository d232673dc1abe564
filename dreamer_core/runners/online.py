"""A minimal online loop (in-memory replay, collect, train, evaluate) for tests and benchmarks.

Robots use the durable replay store and the ROS nodes instead; this loop exists so that the
learner can be checked end to end on small simulated tasks without any of that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from tqdm import tqdm

from dreamer_core.algorithms.agent import Agent
from dreamer_core.runners.train_ratio import TrainRatio


class Env(Protocol):
    """What the loop needs from a task."""

    def reset(self, seed: int | None = None) -> np.ndarray: ...
    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]: ...


class SequenceReplay:
    """Steps stored in collection order; samples uniform windows of ``length`` consecutive steps.

    Windows may cross episode boundaries: ``is_first`` marks where the model must reset.
    """

    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        self.capacity, self.size = capacity, 0
        self.data = {
            "obs": np.zeros((capacity, obs_dim), np.float32),
            "action": np.zeros((capacity, act_dim), np.float32),
            "reward": np.zeros(capacity, np.float32),
            "is_first": np.zeros(capacity, bool),
            "is_last": np.zeros(capacity, bool),
            "is_terminal": np.zeros(capacity, bool),
        }

    def add(self, **step) -> None:
        """Append one step (keys as in :meth:`Agent.train_step` batches, without the B, T axes)."""
        if self.size >= self.capacity:
            raise ValueError(f"replay is full ({self.capacity} steps); raise its capacity")
        for key, value in step.items():
            self.data[key][self.size] = value
        self.size += 1

    def sample(self, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch`` windows of ``length`` steps as ``[B, T, ...]`` arrays."""
        self._check_length(length)
        return self._gather(rng.integers(0, self.size - length + 1, batch), length)

    def windows(self, length: int, stride: int, limit: int) -> dict[str, np.ndarray]:
        """Every ``stride``-th window of ``length`` steps, the newest ``limit`` of them (no draw: the
        same steps always give the same batch, as ``ReplayStore.windows``)."""
        self._check_length(length)
        return self._gather(np.arange(0, self.size - length + 1, stride)[-limit:], length)

    def _check_length(self, length: int) -> None:
        if self.size < length:
            raise ValueError(f"replay holds {self.size} steps, fewer than the sequence length {length}")

    def _gather(self, starts: np.ndarray, length: int) -> dict[str, np.ndarray]:
        index = starts[:, None] + np.arange(length)[None]
        return {key: value[index] for key, value in self.data.items()}


def evaluate(agent: Agent, env: Env, episodes: int, seed: int, explore: bool = False) -> float:
    """Mean undiscounted return of the agent's policy over ``episodes`` episodes."""
    return float(np.mean([ret for ret, _ in episode_returns(agent, env, episodes, seed, explore)]))


def episode_returns(agent: Agent, env: Env, episodes: int, seed: int,
                    explore: bool = False) -> list[tuple[float, int]]:
    """(undiscounted return, rows) of each episode of the agent's policy, episode ``i`` started
    with ``env.reset(seed=seed + i)``; rows count the first one as the replay store does (the
    pairs the robot's canary judges)."""
    out = []
    for episode in range(episodes):
        obs, state, done, ret, rows = env.reset(seed=seed + episode), None, False, 0.0, 1
        while not done:
            action, state = agent.policy_step(obs, state, is_first=state is None, explore=explore)
            obs, reward, terminated, truncated = env.step(action)
            ret, rows = ret + reward, rows + 1
            done = terminated or truncated
        out.append((ret, rows))
    return out


def random_return(env: Env, act_dim: int, episodes: int, seed: int) -> float:
    """Mean return of uniformly random actions (the baseline a learner must beat)."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        done = False
        while not done:
            _, reward, terminated, truncated = env.step(rng.uniform(-1, 1, act_dim))
            total += reward
            done = terminated or truncated
    return total / episodes


def train_online(agent: Agent, env: Env, steps: int, prefill: int = 1000, seed: int = 0,
                 progress: bool = True, after_update: Callable[[Agent], None] | None = None) -> SequenceReplay:
    """Collect ``steps`` env steps (the first ``prefill`` with random actions) and train the agent
    as often as its config's train ratio allows for the steps collected after the prefill.
    ``after_update(agent)`` runs after every update (e.g. to keep a copy of an early agent).

    Returns the replay buffer. Step convention as in :meth:`Agent.train_step`.
    """
    c = agent.config
    ratio = TrainRatio(c)
    replay = SequenceReplay(agent.obs_dim, agent.act_dim, steps + steps // 10 + 10)
    rng = agent.np_rng
    obs, state, reward, first = env.reset(seed=seed), None, 0.0, True
    episode = updates = 0
    for step in tqdm(range(steps), disable=not progress, desc="train_online"):
        if step < prefill:
            action = rng.uniform(-1, 1, agent.act_dim).astype(np.float32)
        else:
            action, state = agent.policy_step(obs, state, is_first=first)
        replay.add(obs=obs, action=action, reward=reward, is_first=first, is_last=False, is_terminal=False)
        obs, reward, terminated, truncated = env.step(action)
        first = False
        if terminated or truncated:
            # The final observation is stored with a null action; nothing is chosen after it.
            replay.add(obs=obs, action=np.zeros(agent.act_dim, np.float32), reward=reward, is_first=False,
                       is_last=True, is_terminal=terminated)
            episode += 1
            obs, state, reward, first = env.reset(seed=seed + episode), None, 0.0, True
        if step >= prefill:
            for _ in range(ratio.owed(step + 1 - prefill, updates)):
                agent.train_step(replay.sample(c.batch_size, c.seq_len, rng))
                updates += 1
                if after_update is not None:
                    after_update(agent)
    return replay
