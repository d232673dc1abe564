"""``dreamer-replay``: inspect a replay store, export it, import rosbag2 recordings into it.

dreamer-replay info DIR [--json]
dreamer-replay export DIR OUT [--format rosbag2|npz|csv] [--robot ID] [--session ID]
                              [--topic TOPIC] [--robot-config NAME_OR_PATH]
dreamer-replay import BAG DIR [--topic TOPIC]

See docs/replay.md ("Export and import").
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

from dreamer_core.robots.config import load_robot_config
from dreamer_core.spec import PolicySpec

from .columns import column_names
from .errors import ReplayStoreError
from .records import AddResult
from .store import ReplayStore
from .tabular import write_csv, write_npz

FORMATS = ("rosbag2", "npz", "csv")


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


def _format(out: Path, asked: str | None) -> str:
    """The export format: ``asked``, else from the output name; a ReplayStoreError when unclear."""
    suffix = out.suffix.lower()
    if suffix in (".mcap", ".db3") and asked in (None, "rosbag2"):
        raise ReplayStoreError(
            f"{out}: a rosbag2 bag is a directory (metadata.yaml + the MCAP file); give a directory name "
            f"such as {out.with_suffix('')} (the MCAP file Foxglove opens is then {out.with_suffix('')}/"
            f"{out.with_suffix('').name}.mcap), or --format npz/csv for one file"
        )
    if asked:
        return asked
    if suffix in (".npz", ".csv"):
        return suffix[1:]
    if not suffix:
        return "rosbag2"
    raise ReplayStoreError(f"cannot tell the format of {out} from its name; pass --format rosbag2, npz or csv")


def _spec(store: ReplayStore, robot_config: str | None) -> PolicySpec | None:
    """The observation spec that names the tabular columns: --robot-config, else the store's."""
    if robot_config is not None:
        return load_robot_config(robot_config).policy_spec()
    return store.spec  # persisted by the replay node; None for stores created without one


def _steps(store: ReplayStore, robot: str | None, session: str | None, total: int, out: Path):
    """The selected stored steps, chunk by chunk, with a progress bar on stderr."""
    with tqdm(total=total, desc=f"exporting to {out.name}", unit="step", file=sys.stderr) as bar:
        for info, rows in store.iter_steps(robot_id=robot, session_id=session):
            yield info, rows
            bar.update(len(rows["seq"]))


def _bag():
    """The rosbag2 module; it needs ``rosbags``, which the onboard install leaves out."""
    try:
        from . import bag
    except ModuleNotFoundError as exc:
        raise ReplayStoreError(
            f"rosbag2 export/import needs the rosbags package ({exc}); install it with pip install 'dreamer_core[bag]'"
        ) from None
    return bag


def _export(store: ReplayStore, args: argparse.Namespace) -> str:
    """Write the export; returns the line that says exactly what was written."""
    out, robot, session = args.output, args.robot, args.session
    fmt = _format(out, args.format)
    if fmt != "rosbag2" and args.topic is not None:
        raise ReplayStoreError("--topic applies to --format rosbag2 only")
    if fmt == "rosbag2" and args.robot_config is not None:
        raise ReplayStoreError("--robot-config names the columns of --format npz/csv; a bag has none")
    if out.exists():
        raise ReplayStoreError(f"{out} already exists; remove it or choose another output name")
    infos = [s for s in store.sessions() if robot in (None, s.robot_id) and session in (None, s.session_id)]
    if not infos:
        raise ReplayStoreError(f"no session in {store.directory} matches robot={robot!r} session={session!r}")
    steps = _steps(store, robot, session, sum(s.stored_steps for s in infos), out)
    try:
        if fmt == "rosbag2":
            return _write_bag(out, steps, args.topic)
        return _write_table(store, out, fmt, steps, infos, args.robot_config)
    except OSError as exc:  # disk full, no permission: nothing is left at OUT
        raise ReplayStoreError(f"writing {out} failed: {exc}") from None


def _write_bag(out: Path, steps, topic: str | None) -> str:
    bag = _bag()
    topic = topic or bag.DEFAULT_TOPIC
    count, mcap = bag.write_bag(out, steps, topic)
    return f"wrote {count} steps to rosbag2 bag {out} (MCAP file {mcap}, topic {topic})"


def _write_table(store: ReplayStore, out: Path, fmt: str, steps, infos, robot_config: str | None) -> str:
    try:
        spec = _spec(store, robot_config)
        obs_names, action_names = column_names(spec, store.obs_dim, store.act_dim)
    except ValueError as exc:  # ConfigError is a ValueError too
        raise ReplayStoreError(str(exc)) from None
    if spec is None:
        print(
            "dreamer-replay: note: the store has no observation spec; obs/action columns are numbered "
            "(obs.0, action.0, ...). Pass --robot-config NAME_OR_PATH to name them.",
            file=sys.stderr,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "npz":
        count = write_npz(out, steps, infos, obs_names, action_names)
    else:
        count = write_csv(out, steps, obs_names, action_names)
    return f"wrote {count} steps to {fmt} file {out}"


def _import(args: argparse.Namespace) -> str:
    bag = _bag()
    counts = bag.import_bag(args.bag, args.directory, topic=args.topic, progress=True)
    added = bag.new_transitions(counts)
    line = (
        f"imported {added} new transitions from {args.bag} into {args.directory} "
        f"({counts[AddResult.DUPLICATE]} already stored, skipped)"
    )
    if counts[AddResult.GAP]:
        line += f"; {counts[AddResult.GAP]} of them follow missing seqs"
    return line


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dreamer-replay`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="dreamer-replay", description="Inspect a replay store, export it, import rosbag2 recordings."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="list sessions, steps, episodes, returns and disk size")
    info.add_argument("directory", type=Path)
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    export = sub.add_parser(
        "export", help="write stored steps as a rosbag2 bag (MCAP), one .npz or one .csv",
        description="Formats: rosbag2 (OUT is a new directory), npz, csv. Without --format: "
        "OUT.npz -> npz, OUT.csv -> csv, OUT without suffix -> rosbag2.",
    )
    export.add_argument("directory", type=Path, help="the replay store")
    export.add_argument("output", type=Path, help="the bag directory or file to create (must not exist)")
    export.add_argument("--format", choices=FORMATS, help="default: from the output name")
    export.add_argument("--robot", help="only sessions of this robot_id")
    export.add_argument("--session", help="only the session with this session_id")
    export.add_argument("--topic", help="rosbag2: topic name of the messages (default /transitions)")
    export.add_argument(
        "--robot-config", metavar="NAME_OR_PATH",
        help="npz/csv: name the obs/action columns from this robot config (default: the store's spec)",
    )
    imp = sub.add_parser(
        "import", help="add the dreamer_msgs/msg/Transition messages of a rosbag2 bag to a store",
        description="Exactly once by (robot_id, session_id, seq): importing a bag twice adds nothing.",
    )
    imp.add_argument("bag", type=Path, help="rosbag2 directory, or one .mcap or .db3 file")
    imp.add_argument("directory", type=Path, help="the replay store (created when missing)")
    imp.add_argument("--topic", help="only this topic (default: every topic of type dreamer_msgs/msg/Transition)")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # damaged files: tell the user every time
        try:
            if args.command == "import":
                print(_import(args))
                return 0
            with ReplayStore(args.directory, readonly=True, progress=True) as store:
                if args.command == "info":
                    _info(store, args.json)
                else:
                    print(_export(store, args))
        except (ReplayStoreError, OSError) as exc:
            print(f"dreamer-replay: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
