"""What the store ingests: one transition of one stream, and what ``add`` says about it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class AddResult(StrEnum):
    """Outcome of ``ReplayStore.add`` (compares equal to its string value)."""

    ADDED = "added"
    # seq at or below one already stored for the stream: dropped (a resend or a late arrival).
    DUPLICATE = "duplicate"
    # Stored, but seqs were missing before it; they are counted in the session's ``gaps``.
    GAP = "gap"


@dataclass
class Transition:
    """One control tick of one stream; mirrors ``dreamer_msgs/Transition``.

    ``action`` is the action chosen after seeing ``obs``; ``reward`` is the reward
    received on reaching ``obs``; ``is_first`` marks the first step of an episode.
    ``seq`` increases by one per tick within a session (for dedup and gap counting);
    ``stamp`` is wall time in seconds.
    """

    robot_id: str
    session_id: str
    seq: int
    obs: np.ndarray
    action: np.ndarray
    reward: float
    is_first: bool
    is_last: bool
    is_terminal: bool
    policy_version: int = 0
    stamp: float = 0.0


def checked_vector(value, size: int, name: str) -> np.ndarray:
    """``value`` as a finite float32 vector of ``size`` elements, or a ValueError naming the field."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Transition.{name} is not numeric: {exc}") from None
    if array.shape != (size,):
        raise ValueError(f"Transition.{name} has shape {array.shape}; this store holds {name} of shape ({size},)")
    # A finite sum proves every element finite (NaN/inf propagate); only then skip the full check.
    if not math.isfinite(float(array.sum())) and not np.isfinite(array).all():
        bad = int(np.argmin(np.isfinite(array)))
        raise ValueError(f"Transition.{name} contains NaN or inf at index {bad}")
    return array


def check_ids(robot_id, session_id) -> None:
    """A ValueError naming the field unless both ids are non-empty strings."""
    for name, value in (("robot_id", robot_id), ("session_id", session_id)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"Transition.{name} must be a non-empty string, got {value!r}")


def checked_scalars(t: Transition) -> tuple[int, float, int, float]:
    """(seq, reward, policy_version, stamp) of ``t`` validated, or a ValueError naming the field."""
    seq, version = int(t.seq), int(t.policy_version)
    if not 0 <= seq < 2**63:
        raise ValueError(f"Transition.seq must be in [0, 2**63), got {seq}")
    if not 0 <= version < 2**32:
        raise ValueError(f"Transition.policy_version must fit uint32, got {version}")
    reward, stamp = float(t.reward), float(t.stamp)
    if not math.isfinite(reward):
        raise ValueError(f"Transition.reward is not finite: {reward}")
    if not math.isfinite(stamp):
        raise ValueError(f"Transition.stamp is not finite: {stamp}")
    return seq, reward, version, stamp
