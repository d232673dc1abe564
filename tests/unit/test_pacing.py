"""The paced simulator's decision (dreamer_core.runners.pacing): when the robot may start its next episode."""

from __future__ import annotations

import pytest

from dreamer_core.runners.pacing import EpisodePacing, LearnerProgress


def progress(owed: int, received: float, training: bool = True) -> LearnerProgress:
    return LearnerProgress(training=training, updates_owed=owed, received=received)


def test_waits_for_a_report_newer_than_the_boundary():
    pacing = EpisodePacing(max_updates_owed=0)
    pacing.report(progress(0, received=5.0))
    # A report from before the episode ended does not know about its data: wait for the next one.
    assert pacing.may_start(10.0) == (False, "waiting for a learner progress report")
    assert pacing.waiting
    pacing.report(progress(0, received=10.5))
    assert pacing.may_start(10.6) == (True, "learner caught up")
    assert not pacing.waiting and pacing.waited_s == pytest.approx(0.6)


def test_waits_while_the_learner_owes_more_than_the_slack_then_resumes():
    pacing = EpisodePacing(max_updates_owed=3)
    assert pacing.may_start(1.0)[0] is False  # no report at all yet
    pacing.report(progress(40, received=2.0))
    go, why = pacing.may_start(2.0)
    assert not go and "40 updates owed (max 3)" in why
    pacing.report(progress(4, received=3.0))
    assert pacing.may_start(3.0)[0] is False
    pacing.report(progress(3, received=4.0))
    assert pacing.may_start(4.0) == (True, "learner caught up")
    assert pacing.waited_s == pytest.approx(3.0)
    # The next boundary is a new wait: the report of 4.0 predates it.
    assert pacing.may_start(30.0)[0] is False
    pacing.report(progress(0, received=31.0))
    assert pacing.may_start(31.0)[0] is True and pacing.waited_s == pytest.approx(4.0)


def test_runs_freely_while_the_learner_waits_for_its_first_data():
    pacing = EpisodePacing(max_updates_owed=0)
    pacing.may_start(1.0)
    pacing.report(progress(500, received=1.5, training=False))  # before min_steps: nothing to train yet
    assert pacing.may_start(1.5) == (True, "learner not training yet")


def test_progress_from_learner_diagnostics():
    p = LearnerProgress.from_diagnostics("training", {"updates": "7", "updates_owed": "12"}, received=3.0)
    assert p == progress(12, 3.0)
    assert not LearnerProgress.from_diagnostics("waiting for data", {"updates_owed": "0"}, 1.0).training
    assert LearnerProgress.from_diagnostics("starting", {"policy_version": "0"}, 1.0) is None  # no progress yet
    with pytest.raises(ValueError, match="updates_owed"):
        LearnerProgress.from_diagnostics("training", {"updates": "7"}, 1.0)
    with pytest.raises(ValueError):
        LearnerProgress.from_diagnostics("training", {"updates_owed": "many"}, 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        EpisodePacing(-1)
