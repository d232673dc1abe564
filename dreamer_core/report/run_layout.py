"""Where a stack run keeps its outputs, for every reader and writer of a run directory.

`dreamer-stack` and the launch files build the nodes' output paths from here, and the session
report reads the same paths, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    """The files of one run directory (see docs/quickstart.md#where-the-outputs-are)."""

    root: Path

    @property
    def replay(self) -> Path:
        """The replay store (replay_node writes it, learner_node reads it)."""
        return self.root / "replay"

    @property
    def learner(self) -> Path:
        """learner_node's run_dir: checkpoint, learner state summary, bundles, TensorBoard."""
        return self.root / "learner"

    @property
    def learner_state(self) -> Path:
        return self.learner / "learner_state.json"

    @property
    def bundles(self) -> Path:
        return self.learner / "bundles"

    @property
    def learner_tensorboard(self) -> Path:
        return self.learner / "tensorboard"

    @property
    def control_state(self) -> Path:
        """The control node's policy-version state (sim stack only; a robot keeps its own)."""
        return self.root / "control_state"

    @property
    def travel_log(self) -> Path:
        """sim_robot's forward travel per episode (sim stack only: a real robot has none)."""
        return self.root / "sim" / "travel.jsonl"

    @property
    def launcher(self) -> Path:
        """What dreamer-stack records itself (diagnostics, policy events, TensorBoard)."""
        return self.root / "launcher"

    @property
    def diagnostics_log(self) -> Path:
        return self.launcher / "diagnostics.jsonl"

    @property
    def policy_events_log(self) -> Path:
        return self.launcher / "policy_events.jsonl"

    @property
    def launcher_tensorboard(self) -> Path:
        return self.launcher / "tensorboard"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def params(self) -> Path:
        return self.root / "params"

    @property
    def report(self) -> Path:
        return self.root / "report.html"
