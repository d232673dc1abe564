"""``dreamer-replay``: inspect a replay store and export it for offline analysis.

dreamer-replay info DIR [--json]
dreamer-replay export DIR OUT.npz [--robot ID] [--session ID]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .errors import ReplayStoreError
from .store import ReplayStore


def _when(stamp: float) -> str:
    if not stamp:
        return "-"
    try:
        return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):  # not a date (e.g. simulation time far from the epoch)
        return f"{stamp:.6g} s"


def _size(nbytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _info(store: ReplayStore, as_json: bool) -> None:
    sessions, stats = store.sessions(), store.stats()
    if as_json:
        print(json.dumps({"stats": stats, "sessions": [asdict(s) for s in sessions]}, indent=1))
        return
    print(f"replay store {store.directory}: obs_dim {store.obs_dim}, act_dim {store.act_dim}")
    header = f"{'robot':<14} {'session':<22} {'start (UTC)':<19} {'end (UTC)':<19} {'steps':>9} {'stored':>9}"
    print(header + f" {'episodes':>8} {'mean return':>11} {'gaps':>6}  policy versions")
    for s in sessions:
        mean = f"{np.mean(s.returns):.3f}" if s.returns else "-"
        versions = ",".join(map(str, s.policy_versions)) or "-"
        print(
            f"{s.robot_id:<14} {s.session_id:<22} {_when(s.start):<19} {_when(s.end):<19} {s.steps:>9} "
            f"{s.stored_steps:>9} {s.episodes:>8} {mean:>11} {s.gaps:>6}  {versions}"
        )
    print(
        f"total: {stats['sessions']} sessions, {stats['steps']} steps stored "
        f"({stats['total_steps']} recorded, "
        f"{stats['evicted_steps']} evicted), {stats['episodes']} episodes, {stats['gaps']} missing seqs, "
        f"{stats['chunks']} chunks, {_size(stats['disk_bytes'])} on disk"
    )
    if stats["damaged_files"] or stats["quarantine_files"]:
        print(
            f"damage: {stats['damaged_files']} damaged files, {stats['damaged_records']} damaged and "
            f"{stats['torn_records']} torn tail records skipped; {stats['quarantine_files']} *.quarantine files "
            f"kept under {store.directory / 'sessions'} (see docs/replay.md, 'Recovery')"
        )


def _export(store: ReplayStore, out: Path, robot: str | None, session: str | None) -> int:
    infos = [s for s in store.sessions() if robot in (None, s.robot_id) and session in (None, s.session_id)]
    if not infos:
        raise ReplayStoreError(f"no session in {store.directory} matches robot={robot!r} session={session!r}")
    index = {(s.robot_id, s.session_id): i for i, s in enumerate(infos)}
    columns: dict[str, list[np.ndarray]] = {}
    total = sum(s.stored_steps for s in infos)
    with tqdm(total=total, desc=f"exporting to {out.name}", unit="step", file=sys.stderr) as bar:
        for info, rows in store.iter_steps(robot_id=robot, session_id=session):
            which = index[(info.robot_id, info.session_id)]
            rows["session_index"] = np.full(len(rows["seq"]), which, np.int32)
            for key, value in rows.items():
                columns.setdefault(key, []).append(value)
            bar.update(len(rows["seq"]))
    arrays = {key: np.concatenate(parts) for key, parts in columns.items()}
    arrays["robot_ids"] = np.array([s.robot_id for s in infos])
    arrays["session_ids"] = np.array([s.session_id for s in infos])
    arrays["session_json"] = np.array(json.dumps([asdict(s) for s in infos]))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return total


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dreamer-replay`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="dreamer-replay", description="Inspect and export a replay store.")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="list sessions, steps, episodes, returns and disk size")
    info.add_argument("directory", type=Path)
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    export = sub.add_parser("export", help="write stored steps to one .npz file")
    export.add_argument("directory", type=Path)
    export.add_argument("output", type=Path, help="the .npz file to write")
    export.add_argument("--robot", help="only sessions of this robot_id")
    export.add_argument("--session", help="only the session with this session_id")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # damaged files: tell the user every time
        try:
            with ReplayStore(args.directory, readonly=True, progress=True) as store:
                if args.command == "info":
                    _info(store, args.json)
                else:
                    steps = _export(store, args.output, args.robot, args.session)
                    print(f"wrote {steps} steps to {args.output}")
        except (ReplayStoreError, OSError) as exc:
            print(f"dreamer-replay: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
