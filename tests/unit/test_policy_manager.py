"""PolicyManager: versions only go forward, operator rollback and pin, robot rejection, persisted
state across restarts, and thread safety under concurrent offers, service calls and ticks."""

from __future__ import annotations

import dataclasses
import json
import threading

import deploy_helpers as helpers
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from thread_hammer import hammer

from dreamer_core.control import PolicyManager, VersionStateError
from dreamer_core.deploy import BundleRejected, PolicyRuntime, build_bundle


@dataclasses.dataclass(frozen=True)
class FakeBundle:
    version: int


class FakeRuntime:
    def __init__(self, version: int):
        self.version = version


def fake_load(bundle, min_version):
    """What PolicyRuntime.load decides about versions, without the ONNX work."""
    if bundle.version < min_version:
        raise BundleRejected("version_too_old", f"v{bundle.version} < {min_version}")
    return FakeRuntime(bundle.version)


def deliver(manager: PolicyManager, version: int) -> None:
    """A bundle arrives and the validator processes it."""
    manager.offer(FakeBundle(version))
    manager.validate_next(fake_load, timeout=0.0)


def running(manager: PolicyManager) -> int:
    """Take the pending switch as the control thread would; the version that now runs."""
    manager.take_switch()
    return manager.status()["active_version"]


@pytest.fixture
def state(tmp_path):
    return tmp_path / "state" / "a1_sim.json"


def test_versions_only_go_forward_even_across_restarts(state):
    pm = PolicyManager("a1_sim", state_path=state)
    deliver(pm, 1)
    deliver(pm, 2)
    assert running(pm) == 2
    deliver(pm, 1)
    assert running(pm) == 2 and pm.status()["last_rejection"] == "v1: version_too_old"
    assert json.loads(state.read_text())["highest_accepted"] == 2
    # A restart: the learner's transient-local topic re-sends v2, an old bundle v1 shows up.
    restarted = PolicyManager("a1_sim", state_path=state)
    deliver(restarted, 1)
    assert running(restarted) == 0 and restarted.status()["bundles_refused"] == 1
    deliver(restarted, 2)
    assert running(restarted) == 2


def test_the_signed_version_is_checked_after_validation_too(state):
    pm = PolicyManager("a1_sim", state_path=state)
    deliver(pm, 5)
    # A header that claims v6 but whose validated (signed) content is v3 is still refused.
    assert not pm.accept(FakeRuntime(3))
    assert running(pm) == 5 and pm.status()["last_rejection"] == "v3: version_too_old"


def test_a_held_version_is_not_validated_again(state):
    pm = PolicyManager("a1_sim", state_path=state)
    deliver(pm, 4)
    running(pm)
    pm.offer(FakeBundle(4))  # the learner restarts and re-publishes its newest bundle
    assert not pm.validate_next(fake_load, timeout=0.0)
    assert pm.take_switch() is None


def test_rollback_names_a_version_and_reaches_the_initial_policy(state):
    pm = PolicyManager("a1_sim", state_path=state)
    for v in (1, 2, 3):
        deliver(pm, v)
    assert running(pm) == 3
    ok, message = pm.rollback(2)
    assert ok and running(pm) == 2 and pm.status()["pinned"] == 2, message
    deliver(pm, 4)  # newer bundles are held, not run, while pinned
    assert running(pm) == 2 and 4 in pm.status()["held_versions"]
    ok, _ = pm.rollback(0)
    assert ok and pm.take_switch().runtime is None and pm.status()["active_version"] == 0
    assert not pm.rollback(0)[0]  # nothing older than the initial policy
    ok, message = pm.pin(0)
    assert ok and running(pm) == 4, message


def test_rollback_to_a_version_no_longer_held_authorises_its_bundle(state):
    pm = PolicyManager("a1_sim", state_path=state)
    for v in (1, 2):
        deliver(pm, v)
    running(pm)
    restarted = PolicyManager("a1_sim", state_path=state)  # v1 is not held any more
    deliver(restarted, 2)
    assert running(restarted) == 2
    ok, message = restarted.rollback(1)
    assert ok and "authorised" in message and running(restarted) == 2
    deliver(restarted, 1)  # an operator re-publishes the old bundle
    assert running(restarted) == 1
    # The pin survives a restart: v2 arriving again is held, v1 runs when it comes.
    again = PolicyManager("a1_sim", state_path=state)
    deliver(again, 2)
    assert running(again) == 0
    deliver(again, 1)
    assert running(again) == 1


def test_pin_needs_a_held_version(state):
    pm = PolicyManager("a1_sim", state_path=state)
    deliver(pm, 1)
    ok, message = pm.pin(7)
    assert not ok and "not held" in message
    assert pm.rollback(1) == (False, "v1 is not older than the running v1; use ~/pin_policy to move forward")


def test_blocking_the_running_version_swaps_back_at_the_next_tick_and_forever(state):
    pm = PolicyManager("a1_sim", state_path=state)
    deliver(pm, 1)
    assert running(pm) == 1
    deliver(pm, 2)
    assert running(pm) == 2
    assert pm.block(2, "it limps") == (True, "v2 rejected; v1 runs from the next tick")
    switch = pm.take_switch()
    assert switch.version == 1 and pm.status()["rejected_versions"] == [2]
    deliver(pm, 2)
    assert pm.status()["last_rejection"] == "v2: version_rejected" and running(pm) == 1
    assert not pm.rollback(2)[0]
    restarted = PolicyManager("a1_sim", state_path=state)
    deliver(restarted, 2)
    assert running(restarted) == 0 and restarted.status()["rejected_versions"] == [2]
    deliver(restarted, 3)
    assert running(restarted) == 3


def test_block_with_nothing_before_falls_back_to_the_initial_policy(state):
    pm = PolicyManager("a1_sim", state_path=state)
    assert pm.block(0) == (False, "v0 is the initial policy: it cannot be blocked")
    deliver(pm, 1)
    running(pm)
    assert pm.block(1)[0]
    assert pm.take_switch().runtime is None
    assert pm.block(1) == (True, "v1 is already rejected")


@pytest.mark.parametrize("content, key", [
    ('{"robot_id": "a1_sim", "highest_accepted": "2"}', "highest_accepted"),
    ('{"robot_id": "a1_sim", "highest_accepted": 2, "rejected": [true]}', "rejected.0"),
    ('{"robot_id": "a1_sim", "surprise": 1}', "surprise"),
    ('{"robot_id": "other_robot"}', "robot_id"),
    ("not json", "<root>"),
])
def test_a_damaged_state_file_is_refused_naming_file_and_key(state, content, key):
    state.parent.mkdir(parents=True)
    state.write_text(content)
    with pytest.raises(VersionStateError, match=key) as info:
        PolicyManager("a1_sim", state_path=state)
    assert str(state) in str(info.value)


def test_a_failing_loader_never_stops_validation(state):
    pm = PolicyManager("a1_sim", state_path=state)

    def broken(bundle, min_version):
        raise RuntimeError("unexpected")

    pm.offer(FakeBundle(1))
    assert pm.validate_next(broken, timeout=0.0)
    assert pm.status()["last_rejection"] == "v1: error (RuntimeError)"
    deliver(pm, 2)
    assert running(pm) == 2


def test_the_validator_thread_survives_a_failing_log(state):
    def log(level, message):
        if level == "error":
            raise ValueError("Logger severity cannot be changed between calls.")  # what rclpy once raised

    def load(bundle, min_version):
        if bundle.version == 6:
            raise BundleRejected("signature_invalid", "forged")
        return fake_load(bundle, min_version)

    pm = PolicyManager("a1_sim", state_path=state, log=log)
    pm.start_validator(load)
    try:
        pm.offer(FakeBundle(6))  # refused in the validator thread, whose error log then raises
        wait_until(lambda: pm.status()["validator_error"])
        pm.offer(FakeBundle(7))
        wait_until(lambda: 7 in pm.status()["held_versions"])
    finally:
        pm.close()
    assert pm.status()["last_rejection"] == "v6: signature_invalid" and running(pm) == 7


def wait_until(predicate, timeout: float = 10.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        done.wait(0.05)
    raise AssertionError("condition not reached")


def test_the_newest_arrival_replaces_a_waiting_bundle(state):
    pm = PolicyManager("a1_sim", state_path=state)
    pm.offer(FakeBundle(3))
    pm.offer(FakeBundle(5))
    pm.validate_next(fake_load, timeout=0.0)
    assert not pm.validate_next(fake_load, timeout=0.0)
    assert running(pm) == 5


def test_concurrent_offers_services_rejections_and_ticks(state):
    """Many threads hammer one manager; the invariants hold and nothing raises."""
    pm = PolicyManager("a1_sim", state_path=state, history=3)
    pm.start_validator(fake_load)
    switches: list[int] = []

    def publisher(rng):
        pm.offer(FakeBundle(rng.randint(1, 60)))

    def operator(rng):
        action = rng.choice(["pin", "unpin", "rollback", "status"])
        if action == "pin":
            pm.pin(rng.randint(1, 60))
        elif action == "unpin":
            pm.pin(0)
        elif action == "rollback":
            pm.rollback(rng.randint(0, 60))
        else:
            pm.status()

    def robot(rng):
        if rng.random() < 0.01:
            pm.block(pm.status()["active_version"])

    def control(rng):
        switch = pm.take_switch()
        if switch is not None:
            switches.append(switch.version)

    errors = hammer([publisher, publisher, operator, robot, control])
    pm.close()
    assert not errors, errors
    assert switches, "the control thread never saw a switch"
    pm.take_switch()  # the tick that would follow
    status = pm.status()
    assert status["active_version"] == 0 or status["active_version"] not in status["rejected_versions"]
    saved = json.loads(state.read_text())
    assert saved["highest_accepted"] == status["highest_accepted"] and saved["rejected"] == status["rejected_versions"]
    assert len(status["held_versions"]) <= 3 + 4  # the history plus active, previous, target and pin


def test_with_real_bundles_min_version_is_enforced_by_the_runtime(tmp_path):
    key = Ed25519PrivateKey.generate()
    spec = helpers.a1_spec()

    def load(bundle, min_version):
        return PolicyRuntime.load(bundle, expected_spec=spec, public_key=key.public_key(), min_version=min_version)

    onnx_bytes = helpers.exported("xs")
    pm = PolicyManager(spec.robot_id, state_path=tmp_path / "state.json")
    for version in (3, 2):
        pm.offer(build_bundle(onnx_bytes, spec, version, 0, "xs", key))
        pm.validate_next(load, timeout=0.0)
    switch = pm.take_switch()
    assert switch.version == 3 and pm.status()["last_rejection"] == "v2: version_too_old"
    assert np.isfinite(switch.runtime.step(np.zeros(spec.obs_dim, np.float32), explore=False)).all()
    with pytest.raises(BundleRejected) as info:
        load(build_bundle(onnx_bytes, spec, 2, 0, "xs", key), 3)
    assert info.value.reason == "version_too_old"
