"""Shared fixtures: isolated ROS 2 environments for tests that start processes."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_domain_ids = itertools.count()


def unique_domain_id() -> int:
    # Stay in 1..200 (DDS port arithmetic allows up to 232); spread by pid so parallel runs do not meet.
    return 1 + (os.getpid() * 13 + next(_domain_ids)) % 200


@pytest.fixture
def ros_env(monkeypatch) -> dict[str, str]:
    """Environment for ROS processes: this machine only, a domain no other test uses."""
    domain = str(unique_domain_id())
    monkeypatch.setenv("ROS_DOMAIN_ID", domain)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def python_exe() -> str:
    return sys.executable
