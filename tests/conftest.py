"""Shared fixtures: isolated ROS 2 environments for tests that start processes."""

from __future__ import annotations

import fcntl
import itertools
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

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


DOMAIN_LOCKS = Path(tempfile.gettempdir()) / "dreamer_ros_test_domains"


def reserve_domain_id() -> tuple[int, IO]:
    """A ROS domain no other test on this machine holds, and the open lock file that holds it.

    Test runs in parallel (several checkouts, CI next to a developer) must never share a domain: a
    node would talk to another run's nodes. A flock is released by the kernel when its holder dies,
    so a killed run leaves nothing stale. Domains stay in 1..200 (DDS port arithmetic allows 232).
    """
    DOMAIN_LOCKS.mkdir(exist_ok=True)
    start = next(_domain_ids) + os.getpid() * 13
    for offset in range(200):
        domain = 1 + (start + offset) % 200
        lock = open(DOMAIN_LOCKS / f"{domain}.lock", "a")  # noqa: SIM115 - held until the test ends
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return domain, lock
    raise RuntimeError(f"all 200 test ROS domains are in use (locks in {DOMAIN_LOCKS})")


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
