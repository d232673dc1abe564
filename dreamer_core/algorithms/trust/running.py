"""The world models behind promoted policies: what the gate compares a candidate with.

The paired check (``paired``) measures the candidate's model against the model whose policy runs
on the robot: the newest promoted version the robot has not rejected (a rolled-back version's
policy no longer runs). The learner keeps a snapshot of the world model of each promoted version
(the newest :data:`KEPT_MODELS` not rejected: the running one and those on trial after it) in its
checkpoint. With none left (nothing promoted yet, or every kept version rejected) the initial
policy runs and there is no learned model to compare with.
"""

from __future__ import annotations

from collections.abc import Collection

import torch

from dreamer_core.algorithms.agent import Agent

# Promoted versions whose world model is kept: the running one and up to two newer ones awaiting a verdict.
KEPT_MODELS = 3


class PromotedModels:
    """World-model snapshots (``state_dict``) of promoted versions, by version."""

    def __init__(self, snapshots: dict[int, dict[str, torch.Tensor]] | None = None):
        self.snapshots = dict(snapshots or {})
        self._built: tuple[int, Agent] | None = None

    def add(self, version: int, agent: Agent, rejected: Collection[int]) -> None:
        """Keep ``agent``'s world model as ``version``'s (and only the newest :data:`KEPT_MODELS` not rejected)."""
        self.snapshots[version] = {k: v.detach().clone() for k, v in agent.wm.state_dict().items()}
        kept = sorted(v for v in self.snapshots if v not in rejected)[-KEPT_MODELS:]
        self.snapshots = {v: self.snapshots[v] for v in kept}

    def running(self, like: Agent, rejected: Collection[int]) -> tuple[int, Agent] | None:
        """(version, an agent with its world model) of the newest kept version not in ``rejected``; built
        like ``like`` (dims, config, device); None when there is none."""
        version = max((v for v in self.snapshots if v not in rejected), default=None)
        if version is None:
            return None
        if self._built is None or self._built[0] != version:
            agent = Agent(like.obs_dim, like.act_dim, like.config, device=like.device, seed=like.seed)
            agent.wm.load_state_dict(self.snapshots[version])
            self._built = (version, agent)
        return self._built
