"""What the store ingests: one transition of one stream, and what ``add`` says about it."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from .errors import InvalidTransitionError


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
    ``seq`` increases by one per tick within a session (for dedup and gap counting).

    ``stamp`` is the step's time in seconds on the publisher's ROS clock: the replay node
    takes it from the message's ``header.stamp``, which the control node sets from its node
    clock when it publishes (``dreamer_ros.conversions.transition_to_msg``): seconds since
    the Unix epoch, or simulation time under ``use_sim_time``. The store keeps it as given
    and uses it only to report a session's start and end. (``Controller.tick`` fills it
    in-process with the monotonic time of the observation's oldest sensor reading; that value
    is not published: ``transition_to_msg`` stamps the message with the node clock.)
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


FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32 = np.dtype(np.float32)


def checked_vector(value, size: int, name: str) -> np.ndarray:
    """``value`` as a finite float32 vector of ``size`` elements, or an InvalidTransitionError naming the field."""
    if type(value) is np.ndarray and value.dtype is _FLOAT32:
        array = value  # what the ROS conversion and the controller produce: nothing to convert
    else:
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf: refused below
                array = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidTransitionError(f"Transition.{name} is not numeric: {exc}") from None
    if array.shape != (size,):
        raise InvalidTransitionError(
            f"Transition.{name} has shape {array.shape}; this store holds {name} of shape ({size},)"
        )
    finite = np.isfinite(array)
    if not finite.all():
        raise InvalidTransitionError(
            f"Transition.{name} contains NaN or inf (or a value beyond float32) at index {int(np.argmin(finite))}"
        )
    return array


def check_ids(robot_id, session_id) -> None:
    """An InvalidTransitionError naming the field unless both ids are non-empty strings."""
    for name, value in (("robot_id", robot_id), ("session_id", session_id)):
        if not isinstance(value, str) or not value:
            raise InvalidTransitionError(f"Transition.{name} must be a non-empty string, got {value!r}")


def checked_integer(value, name: str, bits: int) -> int:
    """``value`` as an int in [0, 2**bits) (bool and float are refused), or an InvalidTransitionError."""
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int | np.integer)):
        raise InvalidTransitionError(f"Transition.{name} must be an integer, got {value!r}")
    if not 0 <= value < 2**bits:
        raise InvalidTransitionError(f"Transition.{name} must be in [0, 2**{bits}), got {value}")
    return int(value)


def checked_real(value, name: str, limit: float) -> float:
    """``value`` as a finite float of magnitude at most ``limit``, or an InvalidTransitionError."""
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidTransitionError(f"Transition.{name} must be a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
    if not math.isfinite(value) or abs(value) > limit:
        raise InvalidTransitionError(
            f"Transition.{name} must be finite and at most {limit:g} in magnitude, got {value}"
        )
    return value


def checked_scalars(t: Transition) -> tuple[int, float, int, float]:
    """(seq, reward, policy_version, stamp) of ``t`` validated, or an InvalidTransitionError naming the field.

    ``reward`` is stored as float32, so it must fit one; ``stamp`` is stored as float64.
    """
    seq, reward, version, stamp = t.seq, t.reward, t.policy_version, t.stamp
    # The common case in one expression (add() runs at ingest rate); NaN fails every comparison.
    if (
        type(seq) is int and type(version) is int and type(reward) is float and type(stamp) is float
        and 0 <= seq < 2**63 and 0 <= version < 2**32 and -FLOAT32_MAX <= reward <= FLOAT32_MAX
        and -math.inf < stamp < math.inf
    ):
        return seq, reward, version, stamp
    return (
        checked_integer(t.seq, "seq", 63),
        checked_real(t.reward, "reward", FLOAT32_MAX),
        checked_integer(t.policy_version, "policy_version", 32),
        checked_real(t.stamp, "stamp", math.inf),
    )
