"""rosbag2 bags (MCAP storage) of ``dreamer_msgs/msg/Transition``: export a replay store, import a
recording. Uses the ``rosbags`` library (pure Python), so no ROS installation is needed.

An exported bag is what ``ros2 bag record /transitions`` would have written: one topic, the
message definition embedded (schema encoding ``ros2msg``, dependencies included), each
message logged at its transition's stamp, which is also its header stamp.
"""

from __future__ import annotations

import itertools
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore
from tqdm import tqdm

from .records import AddResult, Transition
from .sessions import SessionInfo
from .store import ReplayStore, ReplayStoreError
from .transition_msg import TRANSITION_MSG, TRANSITION_MSGTYPE, stamp_parts, transition_from_msg

DEFAULT_TOPIC = "/transitions"
_SEPARATOR = "=" * 80 + "\n"


class BagError(ReplayStoreError):
    """A bag cannot be written or imported as asked (the message says why and what to do)."""


def transition_typestore() -> Typestore:
    """The ROS 2 Kilted types plus ``dreamer_msgs/msg/Transition``."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    typestore.register(get_types_from_msg(TRANSITION_MSG, TRANSITION_MSGTYPE))
    return typestore


def message_definition(typestore: Typestore) -> str:
    """The full definition as ``ros2 bag record`` embeds it: Transition.msg verbatim (comments
    included), then each type it uses (std_msgs/Header, builtin_interfaces/Time)."""
    generated, _ = typestore.generate_msgdef(TRANSITION_MSGTYPE, ros_version=2)
    _own, _, dependencies = generated.partition(_SEPARATOR)
    return TRANSITION_MSG + _SEPARATOR + dependencies


def write_bag(out: Path, steps: Iterable[tuple[SessionInfo, dict[str, np.ndarray]]], topic: str) -> tuple[int, Path]:
    """Write ``steps`` (as ``ReplayStore.iter_steps`` yields them) as a new rosbag2 directory
    ``out``; returns the number of messages and the path of its MCAP file. On any error the
    partial bag is removed."""
    typestore = transition_typestore()
    types = typestore.types
    message, header = types[TRANSITION_MSGTYPE], types["std_msgs/msg/Header"]
    time = types["builtin_interfaces/msg/Time"]
    writer = Writer(out, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
    writer.open()  # creates ``out``: from here on, a failure removes it
    mcap, count = writer.storage.path, 0
    try:
        connection = writer.add_connection(
            topic, TRANSITION_MSGTYPE,
            msgdef=message_definition(typestore), rihs01=typestore.hash_rihs01(TRANSITION_MSGTYPE),
        )
        for info, rows in steps:
            for i in range(len(rows["seq"])):
                try:
                    sec, nanosec = stamp_parts(float(rows["stamp"][i]))
                except ValueError as exc:
                    raise BagError(f"{info.robot_id}/{info.session_id} seq {rows['seq'][i]}: {exc}") from None
                msg = message(
                    header=header(stamp=time(sec=sec, nanosec=nanosec), frame_id=""),
                    robot_id=info.robot_id, session_id=info.session_id, seq=int(rows["seq"][i]),
                    obs=rows["obs"][i], action=rows["action"][i], reward=float(rows["reward"][i]),
                    is_first=bool(rows["is_first"][i]), is_last=bool(rows["is_last"][i]),
                    is_terminal=bool(rows["is_terminal"][i]), policy_version=int(rows["policy_version"][i]),
                )
                data = typestore.serialize_cdr(msg, TRANSITION_MSGTYPE)
                writer.write(connection, sec * 1_000_000_000 + nanosec, data)
                count += 1
        writer.close()
    except BaseException:
        writer.abort()
        shutil.rmtree(out, ignore_errors=True)
        raise
    return count, mcap


def _check_fields(reader: AnyReader, bag: Path) -> None:
    """The bag's own Transition definition must have every field this version reads."""
    ours = [name for name, _ in transition_typestore().fielddefs[TRANSITION_MSGTYPE][1]]
    if (definition := reader.typestore.fielddefs.get(TRANSITION_MSGTYPE)) is None:
        raise BagError(f"{bag} has {TRANSITION_MSGTYPE} messages but no definition of that type")
    theirs = {name for name, _ in definition[1]}
    if missing := [name for name in ours if name not in theirs]:
        raise BagError(
            f"{bag}: its {TRANSITION_MSGTYPE} definition lacks {', '.join(missing)}; it was recorded with "
            "another version of dreamer_msgs, which this dreamer-replay cannot import"
        )


def _connections(reader: AnyReader, bag: Path, topic: str | None) -> list:
    found = [c for c in reader.connections if c.msgtype == TRANSITION_MSGTYPE and topic in (None, c.topic)]
    if not found:
        present = ", ".join(sorted({f"{c.topic} ({c.msgtype})" for c in reader.connections})) or "no topics"
        wanted = f"topic {topic} of type {TRANSITION_MSGTYPE}" if topic else f"a topic of type {TRANSITION_MSGTYPE}"
        raise BagError(f"{bag} has no {wanted}; it holds {present}")
    return found


def _transitions(reader: AnyReader, connections: list, bag: Path) -> Iterator[Transition]:
    """Transitions of the bag in log-time order; a BagError naming the message at the first damage."""
    messages = reader.messages(connections=connections)
    for index in itertools.count(1):
        try:
            item = next(messages, None)
            if item is None:
                return
            connection, _, raw = item
            transition = transition_from_msg(reader.deserialize(raw, connection.msgtype))
        # Decoding untrusted bytes: besides its own errors the library lets through those of its
        # decompressors and struct/string decoding, so any error here means a damaged bag.
        except Exception as exc:
            raise BagError(f"{bag} is damaged at Transition message {index} ({type(exc).__name__}: {exc})") from None
        yield transition


def _open(bag: Path) -> AnyReader:
    reader = AnyReader([bag], default_typestore=transition_typestore())  # for bags without definitions
    try:
        reader.open()
    except Exception as exc:  # as in _transitions: a damaged file raises more than the library's errors
        raise BagError(
            f"cannot read bag {bag} ({type(exc).__name__}: {exc}); a bag whose recording was interrupted "
            "may be repaired with `ros2 bag reindex` (or `mcap recover` for one .mcap file)"
        ) from None
    return reader


def _add_all(store: ReplayStore, transitions: Iterable[Transition], bag: Path, counts: Counter, bar: tqdm) -> None:
    for transition in transitions:
        try:
            counts[store.add(transition)] += 1
        except ValueError as exc:
            raise BagError(
                f"{bag}: Transition message {counts.total() + 1} ({transition.robot_id}/"
                f"{transition.session_id} seq {transition.seq}) cannot be stored: {exc}"
            ) from None
        bar.update()


def import_bag(bag: Path, directory: Path, topic: str | None = None, progress: bool = False) -> Counter:
    """Add every ``dreamer_msgs/msg/Transition`` of ``bag`` (a rosbag2 directory, or one .mcap or
    .db3 file) to the replay store ``directory``, created if missing with obs_dim and act_dim
    taken from the first message. The types are read from the bag itself; exactly once by
    (robot_id, session_id, seq), so importing a bag twice adds nothing. Returns the count of each
    ``AddResult``.

    On damage (a torn or corrupt message, a transition the store refuses) the import stops: the
    transitions before it stay stored, nothing after it is read, and a BagError says where.
    Nothing is created before the first message has been decoded.
    """
    if not bag.exists():
        raise BagError(f"bag {bag} does not exist")
    reader = _open(bag)
    try:
        connections = _connections(reader, bag, topic)
        _check_fields(reader, bag)
        transitions = _transitions(reader, connections, bag)
        first = next(transitions, None)
        if first is None:
            raise BagError(f"{bag} has no {TRANSITION_MSGTYPE} messages")
        declared = sum(c.msgcount for c in connections)
        counts: Counter = Counter()
        with (
            ReplayStore(directory, obs_dim=first.obs.size, act_dim=first.action.size) as store,
            tqdm(total=declared or None, desc=f"importing {bag.name}", unit="msg",
                 file=sys.stderr, disable=not progress) as bar,
        ):
            try:
                _add_all(store, itertools.chain([first], transitions), bag, counts, bar)
            except BagError as exc:
                raise BagError(
                    f"{exc}. Import stopped there: the {new_transitions(counts)} new transitions before it are stored, "
                    "nothing after it; importing a repaired bag adds only what is missing"
                ) from None
    finally:
        reader.close()
    # A bag without checksums (rosbags writes none) can lose a message to a damaged index
    # without any read error; the count it declares still tells.
    if declared and counts.total() != declared:
        raise BagError(
            f"{bag} declares {declared} {TRANSITION_MSGTYPE} messages but {counts.total()} could be read: "
            f"it is damaged (the {new_transitions(counts)} new transitions read are stored)"
        )
    return counts


def new_transitions(counts: Counter) -> int:
    """Transitions an import stored (those after missing seqs included)."""
    return counts[AddResult.ADDED] + counts[AddResult.GAP]
