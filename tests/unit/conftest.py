"""Fixtures shared by the learner tests of this folder."""

from __future__ import annotations

import os

import pytest
from point_mass_candidates import PointMassRun, train_point_mass


@pytest.fixture(scope="session")
def point_mass_run() -> PointMassRun:
    """The healthy point-mass agent and its data (trained once for the learning and trust tests)."""
    return train_point_mass(seed=int(os.environ.get("DREAMER_LEARNING_SEED", "0")))
