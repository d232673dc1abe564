"""Launch files (launch_ros API only) and the dreamer-stack launcher start the same nodes.

The launch_ros test needs `launch_ros`, which has no PyPI wheel: it runs on any
ROS 2 Kilted install (`source /opt/ros/kilted/setup.bash`, then `pytest
tests/integration/test_launch_and_runner.py`). Everything else runs everywhere.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_prefix, get_package_share_directory

from dreamer_core.robots.config import load_robot_config
from dreamer_ros.stacks import STACKS, stack_nodes

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
SHARE = Path(get_package_share_directory("dreamer_ros"))
LAUNCH_API = {"launch", "launch.actions", "launch.substitutions", "launch_ros.actions", "ament_index_python.packages"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_launch_file_uses_only_the_launch_api(stack):
    path = REPO / "launch" / f"{stack}.launch.py"
    assert imported_modules(path) == {"dreamer_ros.launch_description"}
    assert f'stack_launch_description("{stack}")' in path.read_text()
    assert (SHARE / "launch" / path.name).is_file(), "launch files are installed to share/dreamer_ros/launch"


def test_launch_description_module_imports():
    path = REPO / "ros2_ws/src/dreamer_ros/dreamer_ros/launch_description.py"
    extra = imported_modules(path) - LAUNCH_API - {"os", "dreamer_ros.stacks", "dreamer_ros.keystore"}
    assert not extra, f"launch_description.py imports outside the launch API: {extra}"


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_stack_nodes_resolve_to_installed_executables_and_params(stack, tmp_path):
    specs = stack_nodes(stack, robot="a1_sim", config_dir=SHARE / "config", run_dir=tmp_path, namespace="/a1")
    assert [s.executable for s in specs] == list(STACKS[stack])
    for spec in specs:
        assert os.access(Path(get_package_prefix("dreamer_ros")) / "lib/dreamer_ros" / spec.executable, os.X_OK)
        param_file, overrides = spec.parameters
        assert Path(param_file).is_file() and overrides["robot_config"] == "a1_sim"
        assert spec.namespace == "/a1"
    os.environ.pop("DREAMER_ROBOT_CONFIGS", None)
    assert load_robot_config(SHARE / "robot_configs" / "a1_sim.yaml").robot_id == "a1_sim"


def test_launch_ros_builds_the_same_nodes(tmp_path):
    launch = pytest.importorskip("launch", reason="launch_ros is not installable from PyPI; run on a ROS 2 install")
    pytest.importorskip("launch_ros")
    from dreamer_ros.launch_description import stack_launch_description

    description = stack_launch_description("offboard")
    context = launch.LaunchContext()
    context.launch_configurations.update({"run_dir": str(tmp_path)})
    nodes = []
    for entity in description.entities:
        for sub in entity.visit(context) or []:
            nodes.append(sub)
    assert [n.node_executable for n in nodes] == ["replay_node", "learner_node"]


def test_runner_starts_and_stops_the_offboard_stack(tmp_path, ros_env):
    result = subprocess.run(
        [sys.executable, "-m", "dreamer_ros.stack_launcher", "offboard", "--minutes", "0.15",
         "--run-dir", str(tmp_path)],
        env=ros_env, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "started replay_node" in result.stdout and "started learner_node" in result.stdout
    assert f"replay data:          {tmp_path / 'replay'}" in result.stdout
    assert "waiting for" in (tmp_path / "logs" / "learner_node.log").read_text()
    assert (tmp_path / "replay" / "store.json").is_file()


def test_runner_rejects_an_unknown_stack():
    result = subprocess.run([sys.executable, "-m", "dreamer_ros.stack_launcher", "everything"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_control_node_with_a_missing_key_exits_with_the_reason(tmp_path, ros_env):
    exe = Path(get_package_prefix("dreamer_ros")) / "lib/dreamer_ros/control_node"
    result = subprocess.run(
        [str(exe), "--ros-args", "-p", "robot_config:=a1_sim", "-p", f"public_key:={tmp_path / 'missing.pub'}"],
        env=ros_env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "configure failed" in result.stderr + result.stdout and "missing.pub" in result.stderr + result.stdout
