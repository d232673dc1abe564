"""The observation/action contract between a robot and a policy.

A policy trained for one spec must never drive a robot with another (a changed
joint order silently swaps legs), so bundles carry the spec's hash and the
control node compares it with the hash of its own robot config.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PolicySpec:
    """What a policy consumes and produces, in order."""

    robot_id: str
    # Observation terms in order, each with its width: (("joint_pos", 12), ...).
    observation: tuple[tuple[str, int], ...]
    # Actuated joints in action order.
    action_joints: tuple[str, ...]
    # Bounds of the policy's normalised action (before scaling to joint targets).
    action_low: float = -1.0
    action_high: float = 1.0

    @property
    def obs_dim(self) -> int:
        return sum(width for _, width in self.observation)

    @property
    def act_dim(self) -> int:
        return len(self.action_joints)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["observation"] = [[name, width] for name, width in self.observation]
        data["action_joints"] = list(self.action_joints)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> PolicySpec:
        try:
            return cls(
                robot_id=str(data["robot_id"]),
                observation=tuple((str(n), int(w)) for n, w in data["observation"]),
                action_joints=tuple(str(j) for j in data["action_joints"]),
                action_low=float(data.get("action_low", -1.0)),
                action_high=float(data.get("action_high", 1.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed policy spec {data!r}: {exc}") from exc

    def hash(self) -> str:
        """sha256 of the canonical JSON form: equal specs hash equal on every host."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
