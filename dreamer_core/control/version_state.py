"""What a robot remembers about policy versions across restarts.

One JSON file per robot, ``<state_dir>/<robot_id>.json``, written atomically: the
highest version it ever accepted (older bundles are refused, so a restart cannot
bring an old policy back), the versions it rejected (never accepted again), and
the operator's pin (a pinned or rolled-back version stays in charge after a restart).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pydantic

from dreamer_core.io import atomic_write


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/dreamer_ros`` (``~/.local/state/dreamer_ros``): per user, outside any checkout."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "dreamer_ros"


def state_file(state_dir: Path, robot_id: str) -> Path:
    return Path(state_dir) / f"{robot_id}.json"


class VersionStateError(ValueError):
    """The state file exists but cannot be trusted; the message names the file and the key."""


class VersionState(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    robot_id: str
    highest_accepted: pydantic.NonNegativeInt = 0
    rejected: list[pydantic.PositiveInt] = []
    pinned: pydantic.NonNegativeInt | None = None  # 0 = the initial policy

    @classmethod
    def load(cls, path: Path, robot_id: str) -> VersionState:
        """The state in ``path``, or a fresh one when the file does not exist."""
        if not path.exists():
            return cls(robot_id=robot_id)
        try:
            state = cls.model_validate_json(path.read_bytes())
        except pydantic.ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
                                 for e in exc.errors())
            raise VersionStateError(
                f"{path}: {problems}. This file guards against old policies coming back; fix it, or "
                "delete it to forget every accepted and rejected version (docs/nodes.md#policy-versions)"
            ) from None
        except OSError as exc:
            raise VersionStateError(f"{path}: cannot read ({exc})") from None
        if state.robot_id != robot_id:
            raise VersionStateError(f"{path}: robot_id {state.robot_id!r} is not this robot's {robot_id!r}")
        return state

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.model_dump(), indent=2, sort_keys=True).encode())
