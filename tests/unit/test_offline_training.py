"""Offline training: the learner trains beyond the train ratio only while no steps arrive, within a
budget of updates and minutes per idle period, and still judges candidates on its usual cadence.
Time is a fake clock: nothing here waits or reads the wall clock."""

from __future__ import annotations

import pydantic
import pytest
from test_learner_runner import fill_replay, robot, settings  # noqa: F401 - robot is a fixture

from dreamer_core.runners.learner import LearnerRunner
from dreamer_core.runners.learner_settings import LearnerSettings
from dreamer_core.runners.offline import OfflineBudget


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def offline_settings(tmp_path, **kw) -> LearnerSettings:
    base = {"replay_dir": tmp_path / "replay", "run_dir": tmp_path / "learner", "offline_training": True,
            "offline_idle_s": 30.0, "offline_max_updates": 0, "offline_max_minutes": 0.0}
    return LearnerSettings(**{**base, **kw})


def test_off_by_default_and_then_nothing_beyond_the_train_ratio(tmp_path):
    clock = FakeClock()
    budget = OfflineBudget(clock)
    off = LearnerSettings(replay_dir=tmp_path, run_dir=tmp_path)
    assert not off.offline_training
    budget.observe(0)
    clock.now = 1e6
    assert budget.allowed(off, 5) == 0 and budget.status(off) == "off"


def test_an_idle_period_begins_once_no_step_arrived_for_the_idle_time(tmp_path):
    clock, on = FakeClock(), offline_settings(tmp_path)
    budget = OfflineBudget(clock)
    assert budget.allowed(on, 5) == 0  # nothing observed yet: the learner has not read the store
    budget.observe(100)
    clock.now = 29.0
    assert budget.allowed(on, 5) == 0
    assert budget.status(on) == "collecting: last new step 29 s ago (offline after 30 s)"
    budget.observe(0)  # no new step: the wait goes on
    clock.now = 30.0
    assert budget.allowed(on, 5) == 5  # no limits: as many as asked for
    budget.spent(5)
    assert budget.status(on) == "training: 5 updates, 0.0 min"


def test_the_update_budget_counts_down_and_a_new_step_gives_the_next_period_a_fresh_one(tmp_path):
    clock, on, logs = FakeClock(), offline_settings(tmp_path, offline_max_updates=7), []
    budget = OfflineBudget(clock, log=logs.append)
    budget.observe(10)
    clock.now = 30.0
    assert budget.allowed(on, 5) == 5
    budget.spent(5)
    assert budget.allowed(on, 5) == 2
    budget.spent(2)
    assert budget.allowed(on, 5) == 0
    assert budget.status(on) == "budget spent: 7/7 updates, 0.0 min"
    clock.now = 45.0
    budget.observe(1)  # the robot collects again: the idle period ends
    assert budget.allowed(on, 5) == 0 and budget.updates == 0
    clock.now = 74.0
    assert budget.allowed(on, 5) == 0
    clock.now = 75.0
    assert budget.allowed(on, 5) == 5  # a fresh budget
    assert logs == [
        "no new steps for 30 s: training offline on the stored replay (budget per idle period: 7 updates)",
        "offline budget spent: 7 updates in 0.0 min; waiting for new steps",  # said once
        "new steps arrived: offline training ends after 7 updates in 0.2 min",
        "no new steps for 30 s: training offline on the stored replay (budget per idle period: 7 updates)"]


def test_the_minutes_budget_counts_from_the_start_of_the_idle_period(tmp_path):
    clock, on = FakeClock(), offline_settings(tmp_path, offline_max_minutes=2.0)
    budget = OfflineBudget(clock)
    budget.observe(10)
    clock.now = 100.0  # the period begins at the first call after the idle time, here
    assert budget.allowed(on, 3) == 3
    budget.spent(3)
    clock.now = 100.0 + 119.0
    assert budget.allowed(on, 3) == 3
    assert budget.status(on) == "training: 3 updates, 2.0/2 min"
    clock.now = 100.0 + 120.0
    assert budget.allowed(on, 3) == 0
    assert budget.status(on).startswith("budget spent: 3 updates, 2.0/2 min")


@pytest.mark.parametrize("field, value", [("offline_idle_s", 0.5), ("offline_max_updates", -1),
                                          ("offline_max_minutes", -1.0), ("offline_max_minutes", 2000.0)])
def test_settings_out_of_range_are_refused(tmp_path, field, value):
    with pytest.raises(pydantic.ValidationError, match=field):
        offline_settings(tmp_path, **{field: value})


def test_the_learner_trains_offline_counts_those_updates_apart_and_still_judges_candidates(tmp_path, robot):  # noqa: F811
    # train_ratio 4 (the xs preset otherwise): 900 steps allow 3 updates, so the ratio is met in a test's time.
    preset = tmp_path / "xs_ratio4.yaml"
    preset.write_text("deter: 64\nunits: 64\nlayers: 1\nstoch: 8\nclasses: 8\ntrain_ratio: 4\n")
    fill_replay(tmp_path / "replay", robot, 900)
    clock = FakeClock()
    runner = LearnerRunner(robot, settings(tmp_path, preset=str(preset), private_key=None, updates_per_iteration=2,
                                           export_every_updates=5, offline_training=True, offline_idle_s=30.0,
                                           offline_max_updates=5, offline_max_minutes=0.0), log=lambda _: None)
    runner.offline = OfflineBudget(clock)
    for _ in range(3):
        runner.iterate()
    assert runner.updates == 3 and runner.updates_owed() == 0 and runner.state.offline_updates == 0
    clock.now = 29.0
    runner.iterate()
    assert runner.updates == 3  # steps arrived less than offline_idle_s ago: the ratio holds
    clock.now = 30.0
    for _ in range(4):
        runner.iterate()
    assert runner.updates == 8 and runner.state.offline_updates == 5  # 2 + 2 + 1: the budget, then nothing
    assert runner.updates_owed() == 0  # offline updates take nothing from what collected data allow
    # The gate ran on its cadence during the offline updates (at update 5), on held-out data as always.
    assert [p.update for p in runner.state.promotions] == [5]

    # The robot collects again: a new session's steps get their train-ratio share, and end the idle period.
    fill_replay(tmp_path / "replay", robot, 600, session="s2")
    assert runner.ready() and runner.updates_owed() == 2  # 4 * 1500 / 1024 = 5 allowed, 3 made on data
    runner.iterate()
    runner.iterate()
    assert runner.updates == 10 and runner.state.offline_updates == 5 and runner.updates_owed() == 0
    clock.now = 60.0
    runner.iterate()
    assert runner.updates == 12 and runner.state.offline_updates == 7  # a fresh budget for the next idle period
    runner.checkpoint()
    runner.close()
    resumed = LearnerRunner(robot, settings(tmp_path, preset=str(preset), private_key=None), log=lambda _: None)
    assert resumed.state.offline_updates == 7 and resumed.updates_owed() == 0  # the count survives a restart
    resumed.close()
