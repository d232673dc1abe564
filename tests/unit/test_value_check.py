"""The critic's value against the real n-step return that followed (dreamer_core.algorithms.trust.value_check)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from learner_helpers import ACT_DIM, OBS_DIM, tiny_agent

from dreamer_core.algorithms.trust.value_check import value_against_real_return

T = 8


def window(first_at=None, terminal_at=None) -> dict[str, np.ndarray]:
    """One window of reward 1 per step, optionally a new episode or a terminal step inside."""
    is_first, is_terminal = np.zeros((1, T), bool), np.zeros((1, T), bool)
    is_first[0, 0] = True
    if first_at is not None:
        is_first[0, first_at] = True
    if terminal_at is not None:
        is_terminal[0, terminal_at] = True
    return {"obs": np.zeros((1, T, OBS_DIM), np.float32), "action": np.zeros((1, T, ACT_DIM), np.float32),
            "reward": np.ones((1, T), np.float32), "is_first": is_first, "is_last": np.zeros((1, T), bool),
            "is_terminal": is_terminal}


@pytest.fixture()
def agent():
    agent = tiny_agent(gamma=0.9)
    agent.critic.value = lambda feat: torch.full(feat.shape[:-1], 2.0)  # a critic worth 2 everywhere
    return agent


def test_the_real_return_is_discounted_along_the_window_and_closed_by_the_critic(agent):
    g = 0.9
    out = value_against_real_return(agent, window())
    assert out["critic"] == pytest.approx(2.0)
    assert out["real_return"] == pytest.approx(sum(g ** (k - 1) for k in range(1, T)) + g ** (T - 1) * 2.0)


def test_it_stops_where_the_episode_ends(agent):
    g = 0.9
    # A new episode at step 4: rewards 1..3, then the value of step 3 (the last one of the episode).
    assert value_against_real_return(agent, window(first_at=4))["real_return"] == pytest.approx(
        1 + g + g ** 2 + g ** 3 * 2.0)
    # A terminal step 2: its reward counts, nothing after it.
    assert value_against_real_return(agent, window(terminal_at=2))["real_return"] == pytest.approx(1 + g)


def test_a_bad_batch_is_refused(agent):
    bad = window()
    bad["reward"][0, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        value_against_real_return(agent, bad)
