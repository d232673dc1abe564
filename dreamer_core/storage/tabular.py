"""Tabular exports of a replay store: one .npz of arrays, or one .csv with a row per step.

Both name the obs and action columns (see ``columns.py``). Each file is written atomically:
after an error, nothing is left at the output path.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dreamer_core.io import atomic_write

from .sessions import SessionInfo

Steps = Iterable[tuple[SessionInfo, dict[str, np.ndarray]]]
# Per-step scalar columns, in CSV order after robot_id and session_id.
_SCALARS = ("seq", "stamp", "policy_version", "reward", "is_first", "is_last", "is_terminal")
# Shortest formats that read back to the identical value: float64 stamps, float32 data.
_FORMATS = {"stamp": "%.17g", "reward": "%.9g"}


def write_npz(out: Path, steps: Steps, infos: list[SessionInfo], obs_names: list[str], action_names: list[str]) -> int:
    """One .npz (exactly at ``out``, whatever its suffix): ``seq, stamp, policy_version, obs,
    action, reward, is_first, is_last, is_terminal, session_index`` per step, ``robot_ids``,
    ``session_ids``, ``session_json`` per session, and ``obs_names``/``action_names`` naming
    the columns of ``obs``/``action``. Returns the number of steps."""
    index = {(s.robot_id, s.session_id): i for i, s in enumerate(infos)}
    columns: dict[str, list[np.ndarray]] = {}
    for info, rows in steps:
        rows["session_index"] = np.full(len(rows["seq"]), index[(info.robot_id, info.session_id)], np.int32)
        for key, value in rows.items():
            columns.setdefault(key, []).append(value)
    arrays = {key: np.concatenate(parts) for key, parts in columns.items()}
    arrays["robot_ids"] = np.array([s.robot_id for s in infos])
    arrays["session_ids"] = np.array([s.session_id for s in infos])
    arrays["session_json"] = np.array(json.dumps([asdict(s) for s in infos]))
    arrays["obs_names"] = np.array(obs_names)
    arrays["action_names"] = np.array(action_names)
    # A file object, not a name: np.savez appends ".npz" to a name without it.
    atomic_write(out, lambda f: np.savez(f, **arrays))
    return len(arrays.get("seq", ()))


def write_csv(out: Path, steps: Steps, obs_names: list[str], action_names: list[str]) -> int:
    """One .csv with a header row: ``robot_id, session_id, seq, stamp, policy_version, reward,
    is_first, is_last, is_terminal`` (flags as 0/1), then the obs and action columns by name.
    Returns the number of steps."""
    count = 0

    def write(binary) -> None:
        nonlocal count
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        table = csv.writer(text)
        table.writerow(["robot_id", "session_id", *_SCALARS, *obs_names, *action_names])
        for info, rows in steps:
            n = len(rows["seq"])
            scalars = [
                np.char.mod(_FORMATS[key], rows[key]) if key in _FORMATS else rows[key].astype(np.int64).astype(str)
                for key in _SCALARS
            ]
            body = np.column_stack(
                [np.full(n, info.robot_id), np.full(n, info.session_id), *scalars,
                 np.char.mod("%.9g", rows["obs"]), np.char.mod("%.9g", rows["action"])]
            )
            table.writerows(body.tolist())
            count += n
        text.flush()
        text.detach()  # atomic_write still fsyncs and closes the binary file

    atomic_write(out, write)
    return count
