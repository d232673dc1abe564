"""The durable replay store (numpy only; no torch, no ROS). See docs/replay.md."""

from .chunk import CorruptFileError
from .records import AddResult, Transition
from .sampler import NotEnoughDataError
from .sessions import SessionInfo
from .store import ReplayStore, ReplayStoreError, ReplayWarning, ReplayWriteError

__all__ = [
    "AddResult",
    "CorruptFileError",
    "NotEnoughDataError",
    "ReplayStore",
    "ReplayStoreError",
    "ReplayWarning",
    "ReplayWriteError",
    "SessionInfo",
    "Transition",
]
