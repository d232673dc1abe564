"""How far the simulated robot walked forward in each episode: written by ``sim_robot``, read by the
session report and ``bench/a1_learning.py``.

``sim_robot`` (parameter ``travel_log``; the sim stack sets ``<run_dir>/sim/travel.jsonl``)
appends one JSON line per stretch between two resets of the robot, that is per episode, when the
next reset (or the node's stop) ends it::

    {"start": 1733600000.12, "end": 1733600020.31, "forward_m": 1.84}

``forward_m`` is the base's displacement along the heading it had at the start of the stretch (m;
negative: it went backwards). ``start`` and ``end`` are the simulator node's clock (s since the
epoch), the clock the control node stamps the replay rows with: a replay episode's rows all lie
within the stretch it ran in, since the control node starts an episode only after the reset
succeeded and asks for the next reset only after it ended. A real robot has no such file; the
report then shows no forward distance.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dreamer_core.robots.signals import yaw


@dataclass(frozen=True)
class Travel:
    start: float  # node clock (s) at the reset that began the stretch
    end: float  # node clock (s) at the next reset, or when the node stopped
    forward_m: float


def forward_displacement(start_position: np.ndarray, start_quat_wxyz: np.ndarray, position: np.ndarray) -> float:
    """Displacement (m) from ``start_position`` to ``position`` along the start heading (ground plane)."""
    heading = yaw(start_quat_wxyz)
    dx, dy = float(position[0] - start_position[0]), float(position[1] - start_position[1])
    return dx * math.cos(heading) + dy * math.sin(heading)


class TravelLog:
    """The writer ``sim_robot`` holds: ``begin`` at each reset, ``finish`` at the next one or at stop."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._start: tuple[float, np.ndarray, np.ndarray] | None = None

    def begin(self, stamp: float, position: np.ndarray, quat_wxyz: np.ndarray) -> None:
        self._start = (stamp, np.array(position, dtype=np.float64), np.array(quat_wxyz, dtype=np.float64))

    def finish(self, stamp: float, position: np.ndarray) -> None:
        """Append the stretch begun last (nothing when none is open)."""
        if self._start is None:
            return
        start, start_position, start_quat = self._start
        self._start = None
        travel = Travel(start, stamp, forward_displacement(start_position, start_quat, position))
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(travel)) + "\n")


def forward_during(travels: list[Travel], start: float, end: float) -> float | None:
    """The forward travel of the stretch that holds the episode stamped ``start``..``end``; None when
    no stretch holds it whole (not recorded, or the node stopped before writing it)."""
    for travel in travels:
        if travel.start <= start and end <= travel.end:
            return travel.forward_m
    return None
