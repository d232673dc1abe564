"""Shared fixtures-as-functions for the learner tests: a tiny config and random batches."""

import numpy as np

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config

TINY = {"deter": 32, "units": 32, "layers": 1, "stoch": 4, "classes": 4, "batch_size": 4, "seq_len": 8,
        "horizon": 5}
OBS_DIM, ACT_DIM = 5, 2


def tiny_agent(seed: int = 0, **overrides) -> Agent:
    """A small agent on CPU (fast enough for many updates in a unit test)."""
    return Agent(OBS_DIM, ACT_DIM, load_agent_config("xs", {**TINY, **overrides}), seed=seed)


def random_batch(seed: int = 0, batch: int = 4, length: int = 8) -> dict[str, np.ndarray]:
    """A random but well-formed training batch with an episode start inside each sequence."""
    rng = np.random.default_rng(seed)
    is_first = np.zeros((batch, length), bool)
    is_first[:, 0] = True
    is_first[:, length // 2] = True
    is_terminal = np.zeros((batch, length), bool)
    is_terminal[0, length // 2 - 1] = True
    return {
        "obs": rng.normal(size=(batch, length, OBS_DIM)).astype(np.float32),
        "action": rng.uniform(-1, 1, (batch, length, ACT_DIM)).astype(np.float32),
        "reward": rng.normal(size=(batch, length)).astype(np.float32),
        "is_first": is_first,
        "is_last": is_terminal.copy(),
        "is_terminal": is_terminal,
    }
