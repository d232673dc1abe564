"""Parameters every dreamer_ros node shares: which robot config to use, where data goes by default."""

from __future__ import annotations

import os
from pathlib import Path

from dreamer_core.control.version_state import default_state_dir
from dreamer_core.robots.config import RobotConfig, load_robot_config, resolve_config_path


def robot_configs_dirs() -> list[Path]:
    """Where robot configs are found when a node is given a name instead of a path."""
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory("dreamer_ros")) / "robot_configs")
    except (ImportError, LookupError):
        pass
    return dirs


def load_node_robot_config(node) -> RobotConfig:
    """Declare `robot_config` (a name like `a1_sim` or a YAML path) and load it."""
    return load_installed_robot_config(node.declare_parameter("robot_config", "a1_sim").value)


def _use_installed_configs() -> None:
    """Search dreamer_ros's share folder for config names unless DREAMER_ROBOT_CONFIGS says otherwise."""
    if not os.environ.get("DREAMER_ROBOT_CONFIGS"):
        extra = [str(d) for d in robot_configs_dirs() if d.is_dir()]
        if extra:
            os.environ["DREAMER_ROBOT_CONFIGS"] = os.pathsep.join(extra)


def installed_robot_config_path(value: str) -> Path:
    """The file robot config `value` (a YAML path, or a name) resolves to, as a node would find it."""
    _use_installed_configs()
    return resolve_config_path(value)


def load_installed_robot_config(value: str) -> RobotConfig:
    """Load robot config `value` (a YAML path, or a name also looked up in dreamer_ros's share folder)."""
    _use_installed_configs()
    return load_robot_config(value)


def default_data_dir(name: str) -> str:
    """Where a node keeps `name` (replay, learner) when no directory is given:
    ``$XDG_STATE_HOME/dreamer_ros/<name>`` (``~/.local/state/dreamer_ros/<name>``), per user and outside
    any checkout. The launch files and dreamer-stack always give one under their run directory."""
    return str(default_state_dir() / name)
