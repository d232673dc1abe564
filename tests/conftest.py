"""Shared fixtures: isolated ROS 2 environments for tests that start processes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from ros_domains import reserve_domain_id

# Property-based tests: CI runs a fixed, bounded set of examples (the same every run, so a
# failure reproduces); HYPOTHESIS_PROFILE=dev draws fresh examples. Long runs are benchmarks.
settings.register_profile(
    "ci", derandomize=True, max_examples=100, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _isolated_ros(monkeypatch) -> Iterator[dict[str, str]]:
    domain, lock = reserve_domain_id()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    with lock:
        yield env


@pytest.fixture
def ros_env(monkeypatch) -> Iterator[dict[str, str]]:
    """Environment for ROS processes: this machine only, a domain no other test uses."""
    yield from _isolated_ros(monkeypatch)


@pytest.fixture(scope="module")
def module_ros_env() -> Iterator[dict[str, str]]:
    """`ros_env` for a module whose tests share one running stack."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _isolated_ros(monkeypatch)


def python_exe() -> str:
    return sys.executable
