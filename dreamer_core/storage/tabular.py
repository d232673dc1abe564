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
# Per-step scalar columns in CSV order (after robot_id and session_id), with their formats:
# 17 significant digits for the float64 stamp, 9 for float32 values, the fewest that always
# read back identical.
_SCALARS = {
    "seq": "%d", "stamp": "%.17g", "policy_version": "%d", "reward": "%.9g",
    "is_first": "%d", "is_last": "%d", "is_terminal": "%d",
}


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


def _csv_line(values: list[str]) -> str:
    """One CSV line with the csv module's quoting (ids may hold commas or quotes)."""
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(values)
    return line.getvalue()


def write_csv(out: Path, steps: Steps, obs_names: list[str], action_names: list[str]) -> int:
    """One .csv with a header row: ``robot_id, session_id, seq, stamp, policy_version, reward,
    is_first, is_last, is_terminal`` (flags as 0/1), then the obs and action columns by name.
    Returns the number of steps."""
    count = 0
    numbers = ",".join([*_SCALARS.values()] + ["%.9g"] * (len(obs_names) + len(action_names)))

    def write(f) -> None:
        nonlocal count
        f.write((_csv_line(["robot_id", "session_id", *_SCALARS, *obs_names, *action_names]) + "\n").encode())
        for info, rows in steps:
            row = _csv_line([info.robot_id, info.session_id]).replace("%", "%%") + "," + numbers + "\n"
            columns = [rows[key].tolist() for key in _SCALARS]
            lines = [
                row % (*scalars, *obs, *action)
                for *scalars, obs, action in zip(*columns, rows["obs"].tolist(), rows["action"].tolist(), strict=True)
            ]
            f.write("".join(lines).encode())
            count += len(lines)

    atomic_write(out, write)
    return count
