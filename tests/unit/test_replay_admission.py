"""IngestGuard: what the replay node refuses before the store, and that a refusal changes nothing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from replay_support import ACT, OBS, make, stored_seqs

from dreamer_core.spec import PolicySpec
from dreamer_core.storage import AddResult, AdmissionLimits, IngestGuard, Refusal, Refused, ReplayStore


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def msg(seq: int, **kw):
    """A transition valid for any seq (``make``'s values grow with the seq past the guard's bounds)."""
    fields = dict(obs=np.full(OBS, seq % 1000, np.float32), action=np.zeros(ACT, np.float32), policy_version=1,
                  stamp=1.7e9)
    return make(seq, **{**fields, **kw})


def limits(**changes) -> AdmissionLimits:
    fields = dict(robot_ids=frozenset(["robot"]), obs_dim=OBS, act_dim=ACT, seq_window=100, seq_resync_run=5)
    fields.update(changes)
    return AdmissionLimits(**fields)


@pytest.fixture
def store(tmp_path):
    with ReplayStore(tmp_path, obs_dim=OBS, act_dim=ACT, chunk_length=64) as s:
        yield s


def ingest(store: ReplayStore, guard: IngestGuard, t) -> AddResult | Refusal:
    """What the replay node does with one transition."""
    try:
        return store.add(guard.check(t))
    except Refused as exc:
        return exc.kind


def test_a_forged_far_future_seq_does_not_black_hole_the_session(store):
    """On the base commit one Transition with seq 2**63-2 made the next 500 real ones duplicates."""
    guard = IngestGuard(limits(), next_seq=store.next_seq)
    for seq in range(100):
        assert ingest(store, guard, msg(seq)) == AddResult.ADDED
    assert ingest(store, guard, msg(2**63 - 2)) == Refusal.SEQ_AHEAD
    results = [ingest(store, guard, msg(seq)) for seq in range(100, 600)]
    assert results == [AddResult.ADDED] * 500
    np.testing.assert_array_equal(stored_seqs(store), np.arange(600))
    assert guard.refusals[Refusal.SEQ_AHEAD] == 1 and guard.refused == 1 and guard.admitted == 600


def test_a_producer_back_after_a_long_outage_is_taken_again(store):
    guard = IngestGuard(limits(seq_window=10, seq_resync_run=5), next_seq=store.next_seq)
    for seq in range(10):
        ingest(store, guard, msg(seq))
    # A lone forged seq and then a real stream 1000 seqs on (the replay node missed them).
    assert ingest(store, guard, msg(10**9)) == Refusal.SEQ_AHEAD
    results = [ingest(store, guard, msg(seq)) for seq in range(1000, 1010)]
    assert results == [Refusal.SEQ_AHEAD] * 4 + [AddResult.GAP] + [AddResult.ADDED] * 5
    np.testing.assert_array_equal(stored_seqs(store), [*range(10), *range(1004, 1010)])
    assert guard.refusals[Refusal.SEQ_AHEAD] == 5


def test_scattered_far_seqs_never_re_anchor_a_session(store):
    guard = IngestGuard(limits(seq_window=10, seq_resync_run=3), next_seq=store.next_seq)
    ingest(store, guard, msg(0))
    forged = [10**6, 10**6 + 1, 2 * 10**6, 2 * 10**6 + 1, 3 * 10**6, 2**63 - 2]  # never 3 in a row
    assert [ingest(store, guard, msg(seq)) for seq in forged] == [Refusal.SEQ_AHEAD] * len(forged)
    assert ingest(store, guard, msg(1)) == AddResult.ADDED


def test_new_sessions_are_budgeted(store):
    clock = FakeClock()
    guard = IngestGuard(limits(new_session_burst=2, new_sessions_per_hour=3600.0), next_seq=store.next_seq,
                        clock=clock)
    results = [ingest(store, guard, msg(0, session=f"forged-{i}")) for i in range(300)]
    assert results[:2] == [AddResult.ADDED] * 2 and set(results[2:]) == {Refusal.SESSION_RATE}
    assert len(store.sessions()) == 2 and guard.refusals[Refusal.SESSION_RATE] == 298
    assert ingest(store, guard, msg(1, session="forged-0")) == AddResult.ADDED  # known sessions go on
    clock.now += 1.0  # one new session per second refills
    assert ingest(store, guard, msg(0, session="real")) == AddResult.ADDED
    assert ingest(store, guard, msg(0, session="another")) == Refusal.SESSION_RATE


REFUSED = [
    (Refusal.UNKNOWN_ROBOT, {"robot_id": "intruder"}),
    (Refusal.UNKNOWN_ROBOT, {"robot_id": 7}),
    (Refusal.BAD_SESSION_ID, {"session_id": ""}),
    (Refusal.BAD_SESSION_ID, {"session_id": "x" * 129}),
    (Refusal.BAD_SESSION_ID, {"session_id": "line\nbreak"}),
    (Refusal.BAD_SEQ, {"seq": 2**63}),
    (Refusal.BAD_SEQ, {"seq": 1.0}),
    (Refusal.BAD_POLICY_VERSION, {"policy_version": 2**32}),
    (Refusal.BAD_STAMP, {"stamp": float("nan")}),
    (Refusal.BAD_STAMP, {"stamp": -1.0}),
    (Refusal.BAD_STAMP, {"stamp": 1e300}),
    (Refusal.BAD_FLAGS, {"is_terminal": True, "is_last": False}),
    (Refusal.BAD_FLAGS, {"is_first": "yes"}),
    (Refusal.BAD_REWARD, {"reward": 3e38}),
    (Refusal.BAD_REWARD, {"reward": float("-inf")}),
    (Refusal.BAD_OBS, {"obs": np.full(OBS, np.nan)}),
    (Refusal.BAD_OBS, {"obs": np.full(OBS, 1e5)}),
    (Refusal.BAD_OBS, {"obs": np.zeros(OBS + 1)}),
    (Refusal.BAD_ACTION, {"action": np.full(ACT, 1.0001)}),
    (Refusal.BAD_ACTION, {"action": np.zeros(ACT - 1)}),
    (Refusal.BAD_ACTION, {"action": ["a"] * ACT}),
]


@pytest.mark.parametrize(("kind", "change"), REFUSED, ids=[f"{k}-{i}" for i, (k, _) in enumerate(REFUSED)])
def test_each_refusal_is_counted_under_its_kind_and_stores_nothing(store, kind, change):
    guard = IngestGuard(limits(), next_seq=store.next_seq)
    assert ingest(store, guard, msg(0)) == AddResult.ADDED
    bad = dataclasses.replace(msg(1), **change)
    with pytest.raises(Refused, match=f"^{kind}: ") as info:
        guard.check(bad)
    assert info.value.kind == kind
    assert guard.refusals == {k.value: int(k == kind) for k in Refusal}
    assert stored_seqs(store).tolist() == [0] and ingest(store, guard, msg(1)) == AddResult.ADDED


def test_limits_follow_the_policy_spec():
    spec = PolicySpec("a1", (("joint_pos", 4),), ("j0", "j1"), action_low=-0.5, action_high=0.5)
    default = AdmissionLimits.for_spec(spec)
    assert (default.robot_ids, default.obs_dim, default.act_dim) == (frozenset(["a1"]), 4, 2)
    assert (default.action_low, default.action_high) == (-0.5, 0.5)
    assert AdmissionLimits.for_spec(spec, ["a1", "a1_b"], seq_window=7).robot_ids == {"a1", "a1_b"}
    with pytest.raises(ValueError, match="robot_ids"):
        AdmissionLimits.for_spec(spec, [""])
    with pytest.raises(ValueError, match="seq_window"):
        AdmissionLimits.for_spec(spec, seq_window=0)
