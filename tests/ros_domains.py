"""ROS domains for tests: one per test, never shared with another test run on this machine.

A module of its own (not in conftest.py) so that tests can import it: a test folder's own
conftest.py shadows the module name ``conftest``.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import tempfile
from pathlib import Path
from typing import IO

_domain_ids = itertools.count()

DOMAIN_LOCKS = Path(tempfile.gettempdir()) / "dreamer_ros_test_domains"
# 150..232: Fast DDS takes ids up to 232; manual stacks, demos and benches stay below 150.
TEST_DOMAINS = range(150, 233)


def reserve_domain_id() -> tuple[int, IO]:
    """A ROS domain no other test on this machine holds, and the open lock file that holds it.

    Test runs in parallel (several checkouts, CI next to a developer) must never share a domain: a
    node would talk to another run's nodes. A flock is released by the kernel when its holder dies,
    so a killed run leaves nothing stale. Domains come from TEST_DOMAINS, the top of the range, which
    the docs tell users to keep clear of (docs/quickstart.md#troubleshooting).
    """
    DOMAIN_LOCKS.mkdir(exist_ok=True)
    start = next(_domain_ids) + os.getpid() * 13
    for offset in range(len(TEST_DOMAINS)):
        domain = TEST_DOMAINS[(start + offset) % len(TEST_DOMAINS)]
        lock = open(DOMAIN_LOCKS / f"{domain}.lock", "a")  # noqa: SIM115 - held until the test ends
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return domain, lock
    raise RuntimeError(f"all {len(TEST_DOMAINS)} test ROS domains are in use (locks in {DOMAIN_LOCKS})")
