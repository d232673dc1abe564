"""The robot's decisions about policy versions, as the control node publishes them (dreamer_msgs/PolicyEvent).

The policy manager queues one :class:`PolicyEvent` per decision; the node drains the queue,
sends each on ``topics.policy_events`` and the learner records it. ``values`` holds the numbers
behind the decision (docs/nodes.md#policy-events lists the keys per event).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

EVENTS = ("canary_started", "canary_passed", "rolled_back", "forced", "blocked")


@dataclass(frozen=True)
class PolicyEvent:
    version: int
    event: str  # one of EVENTS
    reason: str  # one line for people: the measured values and the thresholds
    values: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown policy event {self.event!r}; one of {EVENTS}")

    def values_json(self) -> str:
        """``values`` as a JSON object; a non-finite number becomes null (JSON has no NaN)."""
        def clean(value):
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value
        return json.dumps({key: clean(v) for key, v in self.values.items()}, sort_keys=True)
