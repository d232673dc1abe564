"""A learning test that can fail: the xs agent must beat random actions on the 2-D point mass.

Measured on the 2-core dev machine (other jobs running): random actions score about −70 per
50-step episode; this configuration's greedy policy reached −10 to −25 after 500–1000 updates
(−126, i.e. worse than random, after only 250). We require at least 25 better than random, which
leaves a margin of 20+ to the measured runs while still failing for a policy that does not steer
toward the target (a constant or random policy scores −70 to −130).
"""

import os

import pytest
import torch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config
from dreamer_core.envs.point_mass import PointMass
from dreamer_core.precision import bf16_support
from dreamer_core.runners.online import evaluate, random_return, train_online
from dreamer_core.runners.train_ratio import TrainRatio

# The xs model with a smaller batch and faster learning rates so that 750 updates fit the test's time
# budget (the published learning rates need far more updates than a unit test can afford), and a
# discount suited to 50-step episodes.
OVERRIDES = {"batch_size": 8, "seq_len": 32, "horizon": 10, "train_ratio": 128, "model_lr": 1e-3, "actor_lr": 3e-4,
             "critic_lr": 3e-4, "gamma": 0.95}
STEPS, PREFILL, MARGIN = 2000, 500, 25.0


# The same test in bf16. On a CPU without bf16 units (the AVX2 CI machine) its 750 updates take about
# 2.5x the CPU time of the float32 test, too long for every CI run; there it runs on request
# (DREAMER_BF16_LEARNING=1), and the bf16/float32 loss parity runs always (tests/unit/test_precision.py).
# Its one run so far (seed 0, AVX2 machine) missed the margin: 21.7 better than random (docs/BENCHMARKS.md).
BF16_HERE = bf16_support(torch.device("cpu"))[0] or os.environ.get("DREAMER_BF16_LEARNING") == "1"


@pytest.mark.slow
def test_xs_agent_beats_random_on_point_mass():
    _learns_point_mass("float32")


@pytest.mark.slow
@pytest.mark.skipif(not BF16_HERE, reason="CPU without bf16 units: ~2.5x the float32 test's time; "
                    "set DREAMER_BF16_LEARNING=1 to run it")
def test_xs_agent_beats_random_on_point_mass_in_bf16():
    _learns_point_mass("bf16")


def _learns_point_mass(precision: str) -> None:
    torch.set_num_threads(1)
    seed = int(os.environ.get("DREAMER_LEARNING_SEED", "0"))
    config = load_agent_config("xs", {**OVERRIDES, "precision": precision})
    agent = Agent(PointMass.obs_dim, PointMass.act_dim, config, seed=seed)
    train_online(agent, PointMass(seed=seed), STEPS, prefill=PREFILL, seed=seed, progress=False)
    assert agent.updates == TrainRatio(config).allowed(STEPS - PREFILL) == 750
    learned = evaluate(agent, PointMass(), episodes=10, seed=1000)
    baseline = random_return(PointMass(), PointMass.act_dim, episodes=10, seed=1000)
    assert learned > baseline + MARGIN, f"greedy return {learned:.1f} vs random {baseline:.1f}"
