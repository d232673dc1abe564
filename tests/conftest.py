"""Shared fixtures: isolated ROS 2 environments for tests that start processes."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parents[1]
_domain_ids = itertools.count()

# Property-based tests: CI runs a fixed, bounded set of examples (the same every run, so a
# failure reproduces); HYPOTHESIS_PROFILE=dev draws fresh examples. Long runs are benchmarks.
settings.register_profile(
    "ci", derandomize=True, max_examples=100, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def unique_domain_id() -> int:
    # Stay in 1..200 (DDS port arithmetic allows up to 232); spread by pid so parallel runs do not meet.
    return 1 + (os.getpid() * 13 + next(_domain_ids)) % 200


def _isolated_ros(monkeypatch) -> dict[str, str]:
    domain = str(unique_domain_id())
    monkeypatch.setenv("ROS_DOMAIN_ID", domain)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def ros_env(monkeypatch) -> dict[str, str]:
    """Environment for ROS processes: this machine only, a domain no other test uses."""
    return _isolated_ros(monkeypatch)


@pytest.fixture(scope="module")
def module_ros_env() -> dict[str, str]:
    """`ros_env` for a module whose tests share one running stack."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _isolated_ros(monkeypatch)


def python_exe() -> str:
    return sys.executable
