"""What dreamer-stack records into ``<run_dir>/launcher`` while a stack runs.

- ``diagnostics.jsonl``: a snapshot of every node's newest ``/diagnostics`` values at each
  progress line (the report's control-timing histograms come from here);
- ``policy_events.jsonl``: the robot's decisions about policy versions (``PolicyEvent``);
- ``tensorboard/`` (where TensorBoard is installed: the learner host): what the robot really did,
  beside the learner's own events: real return per episode (``real/episode_return``) and per
  version (``real/episode_return_by_version/vNNNN``), the learner's gate decisions
  (``policy/promoted_version``, ``policy/held_back_version`` by update), the robot's policy events
  (``robot/<event>``) and control timing (``control/*`` by tick).

Nothing here needs ROS, torch or matplotlib: the launcher hands in plain dicts, and the onboard
stack records the JSON lines only (``tensorboard=False``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from dreamer_core.report.run_data import READ_ERRORS
from dreamer_core.report.run_layout import RunLayout
from dreamer_core.report.tensorboard_scalars import ScalarWriter
from dreamer_core.storage import ReplayStore
from dreamer_core.storage.episodes import episodes

# Control-node diagnostics keys logged to TensorBoard (all in ms but the counter).
CONTROL_SCALARS = ("latency_p50_ms", "latency_p99_ms", "jitter_p50_ms", "jitter_p99_ms", "jitter_max_ms",
                   "missed_deadlines")


class RunRecorder:
    """Records one run's diagnostics, policy events and TensorBoard scalars (see the module docstring)."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.layout = RunLayout(Path(run_dir))
        self.layout.launcher.mkdir(parents=True, exist_ok=True)
        for log in (self.layout.diagnostics_log, self.layout.policy_events_log):
            log.touch()  # present from the start: an empty log means "nothing received", not "not recorded"
        self._tensorboard = ScalarWriter(self.layout.launcher_tensorboard) if tensorboard else None
        self._store: ReplayStore | None = None
        self._episodes_seen: set[tuple[str, str, int]] = set()
        self._decisions_seen: set[tuple[int, int]] = set()
        self._events = 0

    def _scalar(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        if self._tensorboard is not None:
            self._tensorboard.add(tag, value, step, wall_time=wall_time)

    @staticmethod
    def _append(path: Path, record: dict) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def diagnostics(self, latest: dict[str, dict[str, str]], now: float | None = None) -> None:
        """Keep a snapshot of the newest diagnostics per node; log the control node's timing."""
        now = time.time() if now is None else now
        self._append(self.layout.diagnostics_log, {"time": now, "nodes": latest})
        control = latest.get("control_node", {})
        try:
            ticks = int(control["ticks"])
            values = {key: float(control[key]) for key in CONTROL_SCALARS}
        except (KeyError, ValueError):  # not seen yet, or a node that does not report these
            return
        for key, value in values.items():
            self._scalar(f"control/{key}", value, ticks, wall_time=now)

    def policy_event(self, stamp: float, robot_id: str, version: int, event: str, reason: str,
                     values_json: str = "") -> None:
        """Record one of the robot's decisions about a policy version."""
        self._append(self.layout.policy_events_log, {"time": stamp, "robot_id": robot_id, "version": version,
                                                     "event": event, "reason": reason, "values": values_json})
        self._events += 1
        self._scalar(f"robot/{event}", version, self._events, wall_time=stamp or None)

    def replay(self) -> int:
        """Log the real return of every complete episode not logged yet; returns how many were new."""
        try:
            if self._store is None:
                if not (self.layout.replay / "store.json").is_file():
                    return 0
                self._store = ReplayStore(self.layout.replay, readonly=True)
            self._store.refresh()
            found = [e for e in episodes(self._store.iter_steps()) if e.complete]
        except READ_ERRORS:  # the replay node is creating or recovering the store: next time
            return 0
        new = 0
        for e in found:
            key = (e.robot_id, e.session_id, e.first_seq)
            if key in self._episodes_seen:
                continue
            self._episodes_seen.add(key)
            step, wall_time = len(self._episodes_seen), e.end_stamp or None
            self._scalar("real/episode_return", e.ret, step, wall_time=wall_time)
            if not e.mixed_versions:
                self._scalar(f"real/episode_return_by_version/v{e.policy_version:04d}", e.ret, step,
                                      wall_time=wall_time)
            new += 1
        return new

    def decisions(self) -> int:
        """Log the learner's gate decisions not logged yet (from learner_state.json); returns how many."""
        try:
            promotions = json.loads(self.layout.learner_state.read_text()).get("promotions", [])
            records = [(int(d["version"]), int(d["update"]), bool(d["promoted"]), float(d["time"]))
                       for d in promotions]
        except READ_ERRORS:  # not written yet (a JSONDecodeError is a ValueError)
            return 0
        new = 0
        for version, update, promoted, stamp in records:
            if (version, update) in self._decisions_seen:
                continue
            self._decisions_seen.add((version, update))
            tag = "policy/promoted_version" if promoted else "policy/held_back_version"
            self._scalar(tag, version, update, wall_time=stamp)
            new += 1
        return new

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
        if self._store is not None:
            self._store.close()
            self._store = None
