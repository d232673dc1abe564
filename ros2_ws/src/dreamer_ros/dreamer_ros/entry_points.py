"""Console entry points of the nodes.

A node module imports rclpy, onnxruntime or torch, which takes seconds on a loaded robot
computer; a Ctrl-C (or `ros2 launch` stopping) in that time would end in a KeyboardInterrupt
traceback. Importing the node here, under a guard, makes such an early stop quiet. `--help`
prints the node's usage without importing it: nothing starts and nothing is written.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

USAGE = """usage: {node} [--help] [--ros-args [-p NAME:=VALUE] [--params-file FILE] [-r __ns:=/NAMESPACE] ...]

{doc}

Parameters, topics, services and diagnostics: docs/nodes.md#{node}
(on a running node: `ros2 param list /{node}`, `ros2 param describe /{node} NAME`).
Usually started by `dreamer-stack` or the launch files in launch/ (docs/quickstart.md),
which give every parameter a run directory.
"""


def usage(module: str) -> str:
    """The usage text of node `module`, from its docstring (read from the source, not imported)."""
    source = Path(importlib.util.find_spec(f"dreamer_ros.{module}").origin).read_text()
    return USAGE.format(node=module, doc=ast.get_docstring(ast.parse(source)))


def _run(module: str) -> None:
    arguments = sys.argv[1:]
    own = arguments[:arguments.index("--ros-args")] if "--ros-args" in arguments else arguments
    if "-h" in own or "--help" in own:
        print(usage(module))
        return
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
