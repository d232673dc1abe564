"""dreamer_core must work without ROS, and the onboard parts without torch.

Each check runs in a fresh interpreter whose environment carries no ROS
variables and whose import system refuses the blocked packages, so an import
that sneaks in anywhere in the package tree fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

ROS_PACKAGES = [
    "rclpy", "rosidl_runtime_py", "std_msgs", "sensor_msgs", "nav_msgs", "diagnostic_msgs",
    "lifecycle_msgs", "dreamer_msgs", "dreamer_ros", "launch", "launch_ros", "ament_index_python",
]

PROBE = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys
    blocked = set(sys.argv[1].split(","))
    modules = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else None

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ImportError(f"blocked import of {name}")
            return None

    sys.meta_path.insert(0, Block())
    import dreamer_core
    if modules is None:
        modules = [m.name for m in pkgutil.walk_packages(dreamer_core.__path__, "dreamer_core.")]
    for name in modules:
        importlib.import_module(name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
    assert not leaked, leaked
    print(len(modules), "modules imported")
    """
)


def run_probe(blocked: list[str], modules: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "AMENT_", "COLCON_", "RMW_"))}
    # Keep only non-ROS entries on the path: the colcon overlay is where dreamer_msgs lives.
    env["PYTHONPATH"] = ""
    env["LD_LIBRARY_PATH"] = ""
    return subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(blocked), ",".join(modules or [])],
        env=env, capture_output=True, text=True, timeout=300,
    )


def test_every_dreamer_core_module_imports_without_ros():
    result = run_probe(ROS_PACKAGES)
    assert result.returncode == 0, result.stderr
    assert "modules imported" in result.stdout


def test_onboard_modules_import_without_torch():
    onboard = [
        "dreamer_core.spec",
        "dreamer_core.io",
        "dreamer_core.control",
        "dreamer_core.deploy",
        "dreamer_core.deploy.runtime",
        "dreamer_core.deploy.bundle",
        "dreamer_core.storage",
        "dreamer_core.robots.config",
        "dreamer_core.robots.observation",
        "dreamer_core.robots.action",
        "dreamer_core.robots.reward",
        "dreamer_core.config",
        "dreamer_core.runners.pacing",  # the paced simulator's decision
    ]
    result = run_probe([*ROS_PACKAGES, "torch"], onboard)
    assert result.returncode == 0, result.stderr


def test_run_recorder_imports_without_torch_matplotlib_or_tensorboard():
    """dreamer-stack records diagnostics on the robot computer too, which has none of them."""
    result = run_probe([*ROS_PACKAGES, "torch", "matplotlib", "tensorboard"],
                       ["dreamer_core.report", "dreamer_core.report.run_layout", "dreamer_core.report.run_record"])
    assert result.returncode == 0, result.stderr
