"""The contracts between a robot and a policy: what it observes and does, and the tick graph.

A policy trained for one spec must never drive a robot with another (a changed
joint order silently swaps legs), so bundles carry the spec's hash and the
control node compares it with the hash of its own robot config.

The exported policy is one control tick with fixed inputs and outputs
(:data:`TICK_INPUTS`, :data:`TICK_OUTPUTS`, shapes from :class:`PolicyDims`). The
learner builds that graph (``dreamer_core.models.policy_tick``) and the robot checks
and feeds it (``dreamer_core.deploy``); both read the contract from here, torch-free.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import pydantic

# One control tick; the graph's inputs and outputs, in this order (docs/architecture.md#the-onboard-tick).
TICK_INPUTS = ("obs", "h", "z", "prev_action", "is_first", "gumbel", "eps")
TICK_OUTPUTS = ("action", "action_mean", "h_next", "z_next")


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


class PolicyDims(pydantic.BaseModel):
    """Widths of the tick's tensors: obs O, action A, deterministic h D, flat stochastic z S*C."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    obs: pydantic.PositiveInt
    act: pydantic.PositiveInt
    deter: pydantic.PositiveInt
    stoch: pydantic.PositiveInt

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each tick input, in contract order (batch 1; ``is_first`` has one element)."""
        shapes = [
            (1, self.obs),
            (1, self.deter),
            (1, self.stoch),
            (1, self.act),
            (1,),
            (1, self.stoch),
            (1, self.act),
        ]
        return dict(zip(TICK_INPUTS, shapes, strict=True))

    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each tick output, in contract order."""
        shapes = [(1, self.act), (1, self.act), (1, self.deter), (1, self.stoch)]
        return dict(zip(TICK_OUTPUTS, shapes, strict=True))
