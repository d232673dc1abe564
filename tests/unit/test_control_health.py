"""The control node's /diagnostics status: never OK while ticks are not advancing."""

from __future__ import annotations

import dataclasses

import pytest
from controller_fuzz import CONFIG, good_readings, make_controller

from dreamer_core.control.health import control_health
from dreamer_core.control.timing import FixedRateLoop


def health(ctrl, *, active=True, tick_age=0.01, fatal_error=None):
    loop = FixedRateLoop(CONFIG.dt)
    for i in range(3):
        loop.stats.record(i * CONFIG.dt, i * CONFIG.dt, i * CONFIG.dt + 0.001)
    return control_health(ctrl, loop, active=active, tick_age=tick_age, stall_timeout_s=0.5,
                          fatal_error=fatal_error)


def ticked(*inputs):
    ctrl = make_controller()
    for i, r in enumerate(inputs):
        ctrl.tick(r, now=i * CONFIG.dt)
    return ctrl


def test_running_is_ok_and_counters_are_integers():
    h = health(ticked(good_readings(0), good_readings(1)))
    assert (h.level, h.message) == ("OK", "running")
    assert h.values["ticks"] == 3 and h.values["missed_deadlines"] == 0 and h.values["transitions_published"] == 2
    assert str(h.values["ticks"]) == "3" and h.values["loop_alive"] is True
    assert h.values["watchdog"] == "ok" and h.values["pinned"] == "none"
    assert h.values["exploration"].endswith("around every version's mean") and h.values["explore"] is True


@pytest.mark.parametrize("tick_age", [0.6, 30.0])
def test_a_stalled_loop_is_an_error_whatever_the_last_tick_said(tick_age):
    h = health(ticked(good_readings(0)), tick_age=tick_age)
    assert (h.level, h.message) == ("ERROR", "control loop stalled") and h.values["loop_alive"] is False


def test_a_dead_loop_reports_why():
    h = health(ticked(good_readings(0)), fatal_error="control loop died: RuntimeError: x")
    assert (h.level, h.message) == ("ERROR", "control loop died: RuntimeError: x")


def test_an_inactive_node_is_not_ok():
    assert health(ticked(), active=False, tick_age=None).level == "WARN"


def test_faults_set_the_level_and_are_counted_per_name():
    bad = dataclasses.replace(good_readings(1), joint_names=["x"])
    h = health(ticked(good_readings(0), bad, bad))
    assert (h.level, h.message) == ("WARN", "joint_names") and h.values["fault.joint_names"] == 2
    assert "JointState lacks" in h.values["fault_detail"]
    ctrl = ticked(good_readings(0))
    ctrl.safety.latch_estop("test")
    ctrl.tick(good_readings(1), now=CONFIG.dt)
    assert health(ctrl).level == "ERROR"


def test_canary_and_episode_returns_are_reported():
    ctrl = ticked(good_readings(0))
    values = health(ctrl).values
    assert values["canary"] == "none" and values["last_verdict"] == "" and values["trusted_versions"] == ""
    assert values["episode_return_version"] == values["episode_return_last"] == values["episode_return_mean"] == ""
    assert values["episode_return_count"] == 0 and values["ticks_without_command"] == 0
    ctrl.max_steps = 3
    for i in range(1, 4):
        ctrl.tick(good_readings(i), now=i * CONFIG.dt)  # the third row ends the episode at its time limit
    values = health(ctrl).values
    assert values["episode_return_version"] == 0 and values["episode_return_count"] == 1
    assert float(values["episode_return_last"]) == float(values["episode_return_mean"]) > 0
    assert health(ticked(None)).values["ticks_without_command"] == 1
