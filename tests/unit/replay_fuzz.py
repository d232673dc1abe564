"""Property-based fuzzing of replay ingest (IngestGuard + ReplayStore), shared by
tests/unit/test_replay_fuzz.py (bounded, derandomized in CI) and bench/fuzz_replay.py (long runs).

Every field of the Transition message gets good values most of the time and, otherwise,
NaN, ±inf, huge, subnormal, negative, wrong types and lengths, far-future seqs and stamps,
and odd strings. A run is a list of such transitions with store reopens mixed in.

Invariants checked by ``check_ingest``:
- the guard raises nothing but ``Refused``, and each refusal adds exactly one to the counter
  of its kind (and to no other);
- ``ReplayStore.add`` never raises on what the guard admitted;
- the store holds exactly what was added and not dropped as a duplicate, per session, in
  order, with its values, after every reopen too.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from dreamer_core.storage import AddResult, AdmissionLimits, IngestGuard, Refused, ReplayStore, Transition

OBS, ACT = 6, 3
ROBOT = "robot"
REOPEN = "reopen"


def _odd_floats() -> st.SearchStrategy:
    return st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf, 1e39, -3e38, 1e300, 5e-324, -0.0, 1e4 + 1, 2.0**32, -1.0]),
        st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
        st.floats(width=32, allow_subnormal=True),
    )


def _odd_values() -> st.SearchStrategy:
    return st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.binary(max_size=5), st.integers(-(2**70), 2**70))


def _odd_text() -> st.SearchStrategy:
    return st.one_of(
        st.text(max_size=8),  # any unicode, control characters, NUL, ...
        st.text(min_size=129, max_size=200),
        st.sampled_from(["", " ", "\x00", "../..", "a/b", "é" * 50, "\n", "intruder"]),
        _odd_values(),
    )


def _odd_vector(size: int) -> st.SearchStrategy:
    return st.one_of(
        st.lists(_odd_floats(), min_size=size, max_size=size).map(np.asarray),
        st.lists(st.floats(-1, 1, width=32), max_size=2 * size + 2).filter(lambda v: len(v) != size).map(np.asarray),
        st.lists(st.text(max_size=3), min_size=size, max_size=size),
        st.just(np.full(size, 1e6, np.float32)),
        _odd_values(),
    )


# What a careless or hostile publisher may put in each field of the message.
BAD = {
    "robot_id": _odd_text(),
    "session_id": _odd_text(),
    "seq": st.one_of(
        st.sampled_from([2**63 - 2, 2**63 - 1, 2**63, 2**64 - 1, 10**6, -1]), st.floats(0, 60), _odd_values()
    ),
    "obs": _odd_vector(OBS),
    "action": st.one_of(_odd_vector(ACT), st.just(np.full(ACT, 1.5, np.float32))),
    "reward": st.one_of(_odd_floats(), _odd_values()),
    "is_first": _odd_values(),
    "is_last": _odd_values(),
    "is_terminal": _odd_values(),
    "policy_version": st.one_of(st.sampled_from([-1, 2**32, 2**64]), st.floats(0, 5), _odd_values()),
    "stamp": st.one_of(_odd_floats(), st.floats(-1e9, -1e-9), st.floats(2.0**32, 1e300), _odd_values()),
}
SESSIONS = ["s0", "s1", "s2", "s3"]


@st.composite
def ingest_runs(draw, max_size: int = 40) -> list:
    """Transitions and store reopens. Clean transitions advance their session's seq mostly by
    one (with repeats, reorders and skips); about half have one or two fields replaced by a
    hostile value."""
    run, highest = [], {}
    for _ in range(draw(st.integers(0, max_size))):
        if draw(st.integers(0, 11)) == 0:
            run.append(REOPEN)
            continue
        session = draw(st.sampled_from(SESSIONS))
        step = draw(st.sampled_from([1, 1, 1, 1, 1, 1, 0, -2, 3, 40]))
        seq = max(0, highest.get(session, -1) + step)
        highest[session] = max(highest.get(session, -1), seq)
        is_last = draw(st.booleans())
        fields = dict(
            robot_id=ROBOT, session_id=session, seq=seq,
            obs=np.asarray(draw(st.lists(st.floats(-100, 100, width=32), min_size=OBS, max_size=OBS)), np.float32),
            action=np.asarray(draw(st.lists(st.floats(-1, 1, width=32), min_size=ACT, max_size=ACT)), np.float32),
            reward=draw(st.floats(-10, 10)), is_first=draw(st.booleans()), is_last=is_last,
            is_terminal=is_last and draw(st.booleans()), policy_version=draw(st.integers(0, 5)),
            stamp=draw(st.floats(0, 2e9)),
        )
        for name in draw(st.lists(st.sampled_from([*BAD, *[None] * len(BAD)]), max_size=2)):
            if name is not None:
                fields[name] = draw(BAD[name])
        if draw(st.integers(0, 19)) == 0:
            fields.update(is_terminal=True, is_last=False)
        run.append(Transition(**fields))
    return run


class _Clock:
    """A clock that advances a quarter second per reading, so the session budget refills now and then."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


def _open(directory: Path) -> ReplayStore:
    return ReplayStore(directory, obs_dim=OBS, act_dim=ACT, chunk_length=4, durability_interval=3600)


def _guard(store: ReplayStore, clock: _Clock) -> IngestGuard:
    limits = AdmissionLimits(
        robot_ids=frozenset([ROBOT]), obs_dim=OBS, act_dim=ACT, max_abs_obs=1e4, max_abs_reward=1e4,
        seq_window=20, seq_resync_run=3, new_session_burst=2, new_sessions_per_hour=3600.0,
    )
    return IngestGuard(limits, next_seq=store.next_seq, clock=clock)


def _check_stored(store: ReplayStore, model: dict[str, list[Transition]]) -> None:
    sessions = {info.session_id for info in store.sessions()}
    assert sessions == set(model), (sessions, set(model))
    for session, expected in model.items():
        parts = [cols for _, cols in store.iter_steps(robot_id=ROBOT, session_id=session)]
        seq = np.concatenate([p["seq"] for p in parts])
        assert seq.tolist() == [t.seq for t in expected], "stored seqs differ from what was added"
        np.testing.assert_array_equal(np.concatenate([p["obs"] for p in parts]), [t.obs for t in expected])
        np.testing.assert_array_equal(np.concatenate([p["action"] for p in parts]), [t.action for t in expected])
        np.testing.assert_array_equal(
            np.concatenate([p["reward"] for p in parts]), np.float32([t.reward for t in expected])
        )


def check_ingest(run: list, directory: Path) -> Counter:
    """Feed ``run`` through a guard into a fresh store in ``directory``, checking the invariants
    (module docstring); returns the refusals by kind."""
    clock, refused = _Clock(), Counter()
    model: dict[str, list[Transition]] = {}
    store = _open(directory)
    guard = _guard(store, clock)
    try:
        for item in run:
            if item == REOPEN:
                store.close()
                store = _open(directory)
                guard = _guard(store, clock)  # a restarted node: the store knows every session
                _check_stored(store, model)
                continue
            before = dict(guard.refusals)
            try:
                admitted = guard.check(item)
            except Refused as exc:
                refused[exc.kind.value] += 1
                after = dict(guard.refusals)
                assert after[exc.kind.value] == before[exc.kind.value] + 1
                assert sum(after.values()) == sum(before.values()) + 1, "a refusal counted under another kind"
                continue
            assert guard.refusals == before
            result = store.add(admitted)
            if result != AddResult.DUPLICATE:
                model.setdefault(admitted.session_id, []).append(admitted)
        _check_stored(store, model)
        store.close()
        with ReplayStore(directory, readonly=True) as reader:
            _check_stored(reader, model)
    finally:
        store.close()
    return refused
