"""The learner node's settings, without torch: the launchers check a params file against them
before any node starts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamer_core.config import DEFAULT_PRESET


class LearnerSettings(BaseModel):
    """Learner-node settings (ROS parameters of learner_node; see docs/nodes.md).

    The train ratio is the preset's (``AgentConfig.train_ratio``): it belongs to the recipe, is
    saved in the checkpoint with the rest of it, and the online loop reads the same key.
    """

    model_config = ConfigDict(extra="forbid")

    replay_dir: Path
    run_dir: Path
    preset: str = DEFAULT_PRESET
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    min_steps: int = Field(1000, ge=1)
    export_every_updates: int = Field(100, ge=1)
    checkpoint_every_updates: int = Field(50, ge=1)
    updates_per_iteration: int = Field(5, ge=1)
    torch_threads: int = Field(1, ge=1)
    # Niceness increment of the learner process: on a shared machine the robot-side processes come first.
    nice: int = Field(10, ge=0, le=19)
    private_key: Path | None = None
    # Offline training beyond the train ratio while no steps arrive (dreamer_core.runners.offline).
    offline_training: bool = False
    offline_idle_s: float = Field(30.0, ge=1.0, le=3600.0)
    offline_max_updates: int = Field(0, ge=0)  # per idle period; 0: no limit
    offline_max_minutes: float = Field(60.0, ge=0.0, le=1440.0)  # per idle period; 0: no limit
