"""The durable replay store (numpy only; no torch, no ROS). See docs/replay.md."""

from .admission import AdmissionLimits, IngestGuard, Refusal, Refused
from .errors import (
    CorruptFileError,
    InvalidTransitionError,
    MetadataError,
    ReplayStoreError,
    ReplayWarning,
    ReplayWriteError,
)
from .records import AddResult, Transition
from .sampler import NotEnoughDataError, SplitStats
from .sessions import SessionInfo
from .store import ReplayStore

__all__ = [
    "AddResult",
    "AdmissionLimits",
    "CorruptFileError",
    "IngestGuard",
    "InvalidTransitionError",
    "MetadataError",
    "NotEnoughDataError",
    "Refusal",
    "Refused",
    "ReplayStore",
    "ReplayStoreError",
    "ReplayWarning",
    "ReplayWriteError",
    "SessionInfo",
    "SplitStats",
    "Transition",
]
