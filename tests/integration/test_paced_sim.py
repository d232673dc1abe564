"""Paced simulation over DDS: sim_robot (paced) and control_node in their own processes; this test
stands in for the learner on /diagnostics. At an episode boundary the robot waits (no new episode,
no transitions, no physics, no watchdog fault) while the learner owes updates, and resumes once it
has caught up."""

from __future__ import annotations

import re

import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from stack_harness import SLOW_SIM_STALE_PERIODS, Monitor, NodeProcesses

from dreamer_core.deploy import generate_keypair
from dreamer_core.robots.config import parse_robot_config, resolve_config_path
from dreamer_ros.conversions import diagnostic_status

pytestmark = pytest.mark.ros


def learner_report(config, updates_owed: int) -> DiagnosticArray:
    """What learner_node publishes while it trains."""
    status = diagnostic_status("learner_node", config.robot_id, b"\x00", "training",
                               {"updates": 10, "updates_owed": updates_owed})
    return DiagnosticArray(status=[status])


def test_paced_sim_waits_between_episodes_until_the_learner_catches_up(tmp_path, ros_env):
    config = yaml.safe_load(resolve_config_path("a1_sim").read_text())
    config["episode"]["max_seconds"] = 1.0  # episode boundaries every 50 steps
    config["safety"]["stale_sensor_periods"] = SLOW_SIM_STALE_PERIODS
    robot = tmp_path / "a1_short.yaml"
    robot.write_text(yaml.safe_dump(config))
    config_model = parse_robot_config(config)
    keys = generate_keypair(tmp_path / "keys")[0].parent
    nodes = NodeProcesses(tmp_path / "run", ros_env, robot=str(robot), keys_dir=keys)
    nodes.override("sim_robot", paced=True, paced_max_updates_owed=5)
    rclpy.init()
    monitor = Monitor(config_model)
    learner = monitor.node.create_publisher(DiagnosticArray, config_model.topics.diagnostics, 10)
    reports = []  # the learner's updates_owed, newest last; published 5 times a second
    report = reports.append
    monitor.node.create_timer(0.2, lambda: reports and learner.publish(learner_report(config_model, reports[-1])))
    try:
        report(0)  # caught up: episodes run one after another
        nodes.start("sim_robot")
        nodes.start("control_node")
        monitor.wait_for(lambda: int(monitor.value("control_node", "episodes", 0)) >= 2, 240, "two episodes")

        report(50)  # behind: the next boundary waits
        monitor.wait_for(lambda: monitor.value("sim_robot", "paced_waiting") == "True", 60, "the sim to wait")
        monitor.wait_for(lambda: monitor.value("control_node", "waiting_for_reset") == "True", 30,
                         "the control node to wait for the reset")
        waiting = dict(monitor.latest["control_node"]), dict(monitor.latest["sim_robot"])
        # Fault counters so far (startup: no reading yet). stale_sensor is left out: on a loaded machine a
        # late reading trips it whatever the pacing; that the waiting sim keeps publishing is checked by its
        # ticks advancing while its physics steps do not.
        faults = {k: v for k, v in waiting[0].items() if k.startswith("fault.") and k != "fault.stale_sensor"}
        monitor.wait_for(lambda: int(monitor.value("sim_robot", "ticks")) > int(waiting[1]["ticks"]) + 50, 60,
                         "a second of sim ticks")
        control, sim = monitor.latest["control_node"], monitor.latest["sim_robot"]
        # Standing still, still publishing: no new episode, no transitions, no physics steps, no new fault.
        assert control["waiting_for_reset"] == "True" and sim["paced_waiting"] == "True"
        assert control["transitions_published"] == waiting[0]["transitions_published"]
        assert control["episodes"] == waiting[0]["episodes"]
        assert sim["steps"] == waiting[1]["steps"]
        assert {k: v for k, v in control.items() if k.startswith("fault.") and k != "fault.stale_sensor"} == faults

        report(5)  # within the slack: the robot resumes
        monitor.wait_for(lambda: int(monitor.value("control_node", "transitions_published"))
                         > int(waiting[0]["transitions_published"]), 60, "the robot to resume")
        monitor.wait_for(lambda: int(monitor.value("sim_robot", "steps")) > int(waiting[1]["steps"]), 30,
                         "physics to resume")
        assert float(monitor.value("sim_robot", "paced_waited_s")) > 0
        assert "next episode waits: reset; waiting for" in nodes.log("control_node")
    finally:
        nodes.stop_all()
        monitor.close()
        rclpy.try_shutdown()
    # No replay node ran: at stop the control node says its transitions were not stored, and never
    # reports them as published.
    log = nodes.log("control_node")
    assert "no replay node received the" in log and "they are not stored" in log
    assert not re.search(r"published \d+ transitions", log)
