"""Test runs on one machine never share a ROS domain (parallel checkouts, CI next to a developer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ros_domains import reserve_domain_id

TESTS = Path(__file__).resolve().parents[1]


def test_a_held_domain_is_never_handed_out_again_until_released():
    held = [reserve_domain_id() for _ in range(5)]
    domains = [domain for domain, _ in held]
    assert len(set(domains)) == 5 and all(150 <= d <= 232 for d in domains)
    # Another process (another test run) skips every domain this one holds.
    probe = "from ros_domains import reserve_domain_id; print(reserve_domain_id()[0])"
    other = {int(subprocess.run([sys.executable, "-c", probe], cwd=TESTS, capture_output=True,
                                text=True, check=True).stdout) for _ in range(3)}
    assert not other & set(domains)
    for _, lock in held:
        lock.close()


def test_the_docs_keep_users_out_of_the_tests_domains():
    """A manual stack on a test's domain picked up a running suite's nodes (and a suite failed on it)."""
    troubleshooting = (TESTS.parent / "docs" / "quickstart.md").read_text()
    assert "ROS_DOMAIN_ID=<0..101>" in troubleshooting and "Never use 150–232" in troubleshooting
    from ros_domains import TEST_DOMAINS

    assert (TEST_DOMAINS.start, TEST_DOMAINS.stop) == (150, 233)
