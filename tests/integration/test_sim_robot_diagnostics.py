"""sim_robot reports on /diagnostics what the simulation does: loop rate, real-time factor, paused, resets;
and writes the forward travel of each stretch between resets to its travel log."""

from __future__ import annotations

import json
import time

import pytest
import rclpy
from stack_harness import Monitor, NodeProcesses
from std_srvs.srv import Trigger

from dreamer_core.report.run_layout import RunLayout
from dreamer_core.robots.config import load_robot_config

pytestmark = pytest.mark.ros

COUNTERS = ("resets", "ticks", "missed_deadlines", "commands_ignored")


def call_reset(monitor: Monitor) -> None:
    client = monitor.node.create_client(Trigger, "/sim_robot/reset")
    assert client.wait_for_service(timeout_sec=30.0), "sim_robot reset service missing"
    future = client.call_async(Trigger.Request())
    deadline = time.monotonic() + 10.0
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert future.done() and future.result().success


def test_sim_robot_reports_rate_real_time_factor_pause_and_resets(tmp_path, ros_env):
    nodes = NodeProcesses(tmp_path, ros_env, robot="a1_sim")
    rclpy.init()
    monitor = Monitor(load_robot_config("a1_sim"))
    try:
        nodes.start("sim_robot")
        monitor.wait_for(lambda: monitor.value("sim_robot", "ticks") not in (None, "0"), 180, "sim_robot diagnostics")
        values = monitor.latest["sim_robot"]
        assert {"sim_rate_hz", "target_rate_hz", "real_time_factor", "real_time_factor_target", "paused"} <= set(values)
        assert all(values[key].isdigit() for key in COUNTERS), values  # integers, never "3.000"
        assert float(values["target_rate_hz"]) == 50.0 and values["paused"] == "False"
        monitor.set_pause(True)
        monitor.wait_for(lambda: monitor.value("sim_robot", "real_time_factor") == "0.000", 30, "a paused simulation")
        assert monitor.value("sim_robot", "paused") == "True"
        monitor.set_pause(False)
        call_reset(monitor)
        monitor.wait_for(lambda: monitor.value("sim_robot", "resets") == "1", 30, "the reset to be counted")
        monitor.wait_for(lambda: float(monitor.value("sim_robot", "real_time_factor")) > 0, 30, "running again")
    finally:
        nodes.stop_all()
        monitor.close()
        rclpy.try_shutdown()
    # The stack sets the travel log: one stretch up to the reset, one up to the stop; no command came, so
    # the robot stood (forward travel of centimetres at most).
    stretches = [json.loads(line) for line in RunLayout(tmp_path).travel_log.read_text().splitlines()]
    assert len(stretches) == 2 and stretches[0]["end"] == stretches[1]["start"] < stretches[1]["end"], stretches
    assert all(abs(s["forward_m"]) < 0.1 for s in stretches), stretches
