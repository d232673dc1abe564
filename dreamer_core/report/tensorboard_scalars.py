"""TensorBoard scalars without torch: written with TensorBoard's own event-file writer and read back
with its event reader, so the launcher and the report need neither torch nor a running TensorBoard."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Series:
    """One scalar tag: values by step, with the wall-clock time each was written."""

    steps: np.ndarray
    values: np.ndarray
    wall_times: np.ndarray


def read_scalars(logdir: Path) -> dict[str, Series]:
    """Every scalar tag in the event files of ``logdir`` (all of them: no sampling)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    accumulator.Reload()
    series = {}
    for tag in accumulator.Tags()["scalars"]:
        events = accumulator.Scalars(tag)
        series[tag] = Series(steps=np.array([e.step for e in events], np.int64),
                             values=np.array([e.value for e in events], np.float64),
                             wall_times=np.array([e.wall_time for e in events], np.float64))
    return series


class ScalarWriter:
    """Appends scalar events to a new event file in ``logdir``."""

    def __init__(self, logdir: Path):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        Path(logdir).mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(logdir), flush_secs=10)

    def add(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))])
        self._writer.add_event(event_pb2.Event(wall_time=wall_time or time.time(), step=int(step), summary=summary))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
