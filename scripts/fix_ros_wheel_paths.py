"""Point the CMake exports of the ROS 2 PyPI wheels at this virtual environment.

The Kilted wheels are built in a manylinux container and their CMake export
files and ament parent-prefix markers name that container's Python
(`/opt/python/cp311-cp311`). colcon builds of interface packages fail on those
non-existent paths, so we rewrite them once, in place, after `pip install`.
Running it again changes nothing.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import numpy

BUILD_PREFIX = "/opt/python/cp311-cp311"


def replacements(venv: Path) -> list[tuple[str, str]]:
    # Most specific first: include dirs live outside the venv.
    return [
        (f"{BUILD_PREFIX}/include/python3.11", sysconfig.get_paths()["include"]),
        (f"{BUILD_PREFIX}/lib/python3.11/site-packages/numpy/_core/include", numpy.get_include()),
        (BUILD_PREFIX, str(venv)),
    ]


def main() -> int:
    venv = Path(sys.prefix)
    share = venv / "share"
    if not share.is_dir():
        print(f"fix_ros_wheel_paths: {share} missing; are the ROS 2 wheels installed?", file=sys.stderr)
        return 1
    rules = replacements(venv)
    changed = 0
    for path in share.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if BUILD_PREFIX not in text:
            continue
        for old, new in rules:
            text = text.replace(old, new)
        path.write_text(text)
        changed += 1
    print(f"fix_ros_wheel_paths: rewrote {changed} file(s) under {share}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
