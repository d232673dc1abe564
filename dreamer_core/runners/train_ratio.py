"""The train ratio: how many gradient updates the collected data allows (DreamerV3's replay ratio).

``train_ratio`` is replayed steps per collected step; one update replays ``batch_size · seq_len``
steps, so ``n`` collected steps allow ``floor(train_ratio · n / (batch_size · seq_len))`` updates.
The online loop and the learner runner both pace themselves with :class:`TrainRatio`.
"""

from __future__ import annotations

from dreamer_core.config import AgentConfig


class TrainRatio:
    """Caps updates at the agent config's ``train_ratio``."""

    def __init__(self, config: AgentConfig):
        self.train_ratio = config.train_ratio
        self.steps_per_update = config.batch_size * config.seq_len

    @property
    def updates_per_step(self) -> float:
        """Updates each collected step allows: ``train_ratio / (batch_size · seq_len)``."""
        return self.train_ratio / self.steps_per_update

    def allowed(self, collected_steps: int) -> int:
        """Updates allowed in total after ``collected_steps`` steps."""
        return int(self.train_ratio * collected_steps / self.steps_per_update)

    def owed(self, collected_steps: int, updates_done: int) -> int:
        """Updates still allowed after ``updates_done`` (never negative)."""
        return max(0, self.allowed(collected_steps) - updates_done)
