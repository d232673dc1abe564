"""A learning test that can fail: the xs agent must beat random actions on the 2-D point mass.

Measured on the 2-core dev machine (other jobs running): random actions score about −70 per
50-step episode; this configuration's greedy policy reached −10 to −40 after 500–1000 updates
(−126, i.e. worse than random, after only 250). We require at least 25 better than random, which
leaves a margin of 5+ to the measured runs while still failing for a policy that does not steer
toward the target (a constant or random policy scores −70 to −130). The run is the shared
``point_mass_run`` fixture (tests/unit/point_mass_candidates.py), which the model-trust tests use too.
"""

import os

import pytest
import torch
from point_mass_candidates import PREFILL, STEPS, random_policy_return, real_return, train_point_mass

from dreamer_core.precision import bf16_support
from dreamer_core.runners.train_ratio import TrainRatio

MARGIN = 25.0
# 750 updates can take over 10 minutes at load average 20: more room than the suite-wide 600 s hang limit.
pytestmark = pytest.mark.timeout(2400)

# The same test in bf16. On a CPU without bf16 units (the AVX2 CI machine) its 750 updates take about
# 2.5x the CPU time of the float32 test, too long for every CI run; there it runs on request
# (DREAMER_BF16_LEARNING=1), and the bf16/float32 loss parity runs always (tests/unit/test_precision.py).
# Its one run so far (seed 0, AVX2 machine) missed the margin: 21.7 better than random (docs/BENCHMARKS.md).
BF16_HERE = bf16_support(torch.device("cpu"))[0] or os.environ.get("DREAMER_BF16_LEARNING") == "1"


@pytest.mark.slow
def test_xs_agent_beats_random_on_point_mass(point_mass_run):
    _beats_random(point_mass_run.healthy)


@pytest.mark.slow
@pytest.mark.skipif(not BF16_HERE, reason="CPU without bf16 units: ~2.5x the float32 test's time; "
                    "set DREAMER_BF16_LEARNING=1 to run it")
def test_xs_agent_beats_random_on_point_mass_in_bf16():
    _beats_random(train_point_mass(seed=int(os.environ.get("DREAMER_LEARNING_SEED", "0")), precision="bf16").healthy)


def _beats_random(agent) -> None:
    assert agent.updates == TrainRatio(agent.config).allowed(STEPS - PREFILL) == 750
    learned, baseline = real_return(agent), random_policy_return()
    assert learned > baseline + MARGIN, f"greedy return {learned:.1f} vs random {baseline:.1f}"
