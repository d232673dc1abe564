"""Console entry points of the nodes.

A node module imports rclpy, onnxruntime or torch, which takes seconds on a loaded robot
computer; a Ctrl-C (or `ros2 launch` stopping) in that time would end in a KeyboardInterrupt
traceback. Importing the node here, under a guard, makes such an early stop quiet.
"""

from __future__ import annotations

import importlib


def _run(module: str) -> None:
    try:
        node_main = importlib.import_module(f"dreamer_ros.{module}").main
    except KeyboardInterrupt:  # stopped while still importing: nothing ran, nothing to clean up
        return
    node_main()


def sim_robot() -> None:
    _run("sim_robot")


def control_node() -> None:
    _run("control_node")


def replay_node() -> None:
    _run("replay_node")


def learner_node() -> None:
    _run("learner_node")
