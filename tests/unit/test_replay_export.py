"""dreamer-replay export/import: rosbag2 (MCAP) bags, npz and csv, on real files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as BagWriter

from dreamer_core.robots.config import load_robot_config
from dreamer_core.storage import ReplayStore, Transition
from dreamer_core.storage.bag import message_definition, transition_typestore
from dreamer_core.storage.cli import main
from dreamer_core.storage.columns import column_names
from dreamer_core.storage.transition_msg import (
    TRANSITION_MSG,
    TRANSITION_MSGTYPE,
    stamp_parts,
    stamp_seconds,
)

REPO = Path(__file__).resolve().parents[2]
OBS, ACT = 5, 3
T0 = 1.7e9  # wall-clock stamps, as the control node writes them
NIGHT = 'night, "shift" 100%'  # a session id that CSV must quote


def transition(robot: str, session: str, seq: int, stamp: float) -> Transition:
    rng = np.random.default_rng(seq + 1000 * len(session))
    return Transition(
        robot_id=robot, session_id=session, seq=seq,
        obs=rng.normal(size=OBS).astype(np.float32), action=rng.uniform(-1, 1, ACT).astype(np.float32),
        reward=float(rng.normal()), is_first=seq % 10 == 0, is_last=seq % 10 == 9,
        is_terminal=seq % 20 == 19, policy_version=seq // 25, stamp=stamp,
    )


@pytest.fixture
def store_dir(tmp_path) -> Path:
    """Two robots recording at the same time (interleaved stamps), one session with a seq gap."""
    directory = tmp_path / "replay"
    with ReplayStore(directory, obs_dim=OBS, act_dim=ACT, chunk_length=16) as store:
        for seq in [*range(30), *range(35, 60)]:
            store.add(transition("a1", "morning", seq, T0 + seq * 0.02 + 1e-6 * seq))
        for seq in range(100, 140):
            store.add(transition("b2", NIGHT, seq, T0 + 0.013 + (seq - 100) * 0.02))
    return directory


def rows_by_session(directory: Path) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    with ReplayStore(directory, readonly=True) as store:
        parts: dict[tuple[str, str], list[dict]] = {}
        for info, rows in store.iter_steps():
            parts.setdefault((info.robot_id, info.session_id), []).append(rows)
    return {key: {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]} for key, chunks in parts.items()}


def assert_same_rows(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert sorted(a[key]) == sorted(b[key])
        for column in a[key]:
            np.testing.assert_array_equal(a[key][column], b[key][column], err_msg=f"{key} {column}")
            assert a[key][column].dtype == b[key][column].dtype


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_transition_definition_equals_the_ros_package_file():
    assert (REPO / "ros2_ws/src/dreamer_msgs/msg/Transition.msg").read_text() == TRANSITION_MSG


def test_wall_clock_stamps_survive_builtin_interfaces_time():
    rng = np.random.default_rng(0)
    stamps = [*rng.uniform(1e7, 2.1e9, 20000), T0, T0 + 0.999999999, np.nextafter(T0 + 1, 0), 1e7]
    for stamp in stamps:
        sec, nanosec = stamp_parts(float(stamp))
        assert 0 <= nanosec < 1_000_000_000
        assert stamp_seconds(sec, nanosec) == float(stamp)
    with pytest.raises(ValueError, match="does not fit"):
        stamp_parts(-1.0)
    with pytest.raises(ValueError, match="does not fit"):
        stamp_parts(2.0**31)


def test_bag_round_trip_is_identical_and_exactly_once(store_dir, tmp_path, capsys):
    bag = tmp_path / "bags" / "all"
    code, out, _ = run(capsys, "export", store_dir, bag)
    assert code == 0
    mcap = bag / "all.mcap"
    assert out == f"wrote 95 steps to rosbag2 bag {bag} (MCAP file {mcap}, topic /transitions)\n"
    assert sorted(p.name for p in bag.iterdir()) == ["all.mcap", "metadata.yaml"]

    copy = tmp_path / "copy"
    code, out, _ = run(capsys, "import", bag, copy)
    assert code == 0, out
    assert out == (
        f"imported 95 new transitions from {bag} into {copy} (0 already stored, skipped); "
        "1 of them follow missing seqs\n"
    )
    assert_same_rows(rows_by_session(store_dir), rows_by_session(copy))
    with ReplayStore(copy, readonly=True) as store:
        assert {(s.robot_id, s.session_id): s.gaps for s in store.sessions()} == {
            ("a1", "morning"): 5, ("b2", NIGHT): 0,
        }

    code, out, _ = run(capsys, "import", bag, copy)
    assert code == 0
    assert out.startswith(f"imported 0 new transitions from {bag} into {copy} (95 already stored, skipped)")
    assert_same_rows(rows_by_session(store_dir), rows_by_session(copy))


def test_exported_bag_opens_with_rosbags_and_header_stamp_is_the_stamp(store_dir, tmp_path, capsys):
    bag = tmp_path / "b2bag"
    assert run(capsys, "export", store_dir, bag, "--robot", "b2", "--topic", "/b2/transitions")[0] == 0
    expected = rows_by_session(store_dir)[("b2", NIGHT)]
    with AnyReader([bag]) as reader:
        assert [(c.topic, c.msgtype) for c in reader.connections] == [("/b2/transitions", TRANSITION_MSGTYPE)]
        assert reader.message_count == 40
        messages = [(t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages()]
    for i, (log_time, msg) in enumerate(messages):
        sec, nanosec = stamp_parts(float(expected["stamp"][i]))
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (sec, nanosec)
        assert log_time == sec * 1_000_000_000 + nanosec
        assert (msg.robot_id, msg.session_id, msg.seq) == ("b2", NIGHT, expected["seq"][i])
        np.testing.assert_array_equal(msg.obs, expected["obs"][i])


def test_exported_bag_opens_with_a_generic_mcap_reader(store_dir, tmp_path, capsys):
    bag = tmp_path / "bag"
    assert run(capsys, "export", store_dir, bag)[0] == 0
    with open(bag / "bag.mcap", "rb") as f:
        reader = make_reader(f, validate_crcs=True)
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        [schema] = summary.schemas.values()
        assert (schema.name, schema.encoding) == (TRANSITION_MSGTYPE, "ros2msg")
        definition = schema.data.decode()
        # What Foxglove and PlotJuggler parse: the .msg text verbatim, then each dependency.
        assert definition == message_definition(transition_typestore())
        assert definition.startswith(TRANSITION_MSG + "=" * 80 + "\nMSG: std_msgs/Header\n")
        assert "MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n" in definition
        [channel] = summary.channels.values()
        assert (channel.topic, channel.message_encoding) == ("/transitions", "cdr")
        assert summary.statistics.message_count == 95
        assert sum(1 for _ in reader.iter_messages()) == 95


def ros2_style_mcap(path: Path, transitions: list[Transition], chunk_size: int = 2000) -> list[bytes]:
    """A single .mcap as `ros2 bag record` writes it (another writer than rosbags: chunk CRCs,
    ros2 profile, ros2msg schema, CDR messages); returns each message's bytes."""
    typestore = transition_typestore()
    types = typestore.types
    raws = []
    with open(path, "wb") as f:
        writer = McapWriter(f, chunk_size=chunk_size, compression=CompressionType.NONE)
        writer.start(profile="ros2", library="test")
        schema = writer.register_schema(TRANSITION_MSGTYPE, "ros2msg", message_definition(typestore).encode())
        channel = writer.register_channel("/a1/transitions", "cdr", schema)
        for t in transitions:
            sec, nanosec = stamp_parts(t.stamp)
            stamp = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
            msg = types[TRANSITION_MSGTYPE](
                header=types["std_msgs/msg/Header"](stamp=stamp, frame_id=""), robot_id=t.robot_id,
                session_id=t.session_id, seq=t.seq, obs=t.obs, action=t.action, reward=np.float32(t.reward),
                is_first=t.is_first, is_last=t.is_last, is_terminal=t.is_terminal, policy_version=t.policy_version,
            )
            raw = bytes(typestore.serialize_cdr(msg, TRANSITION_MSGTYPE))
            raws.append(raw)
            time = sec * 1_000_000_000 + nanosec
            writer.add_message(channel, log_time=time, data=raw, publish_time=time)
        writer.finish()
    return raws


def test_import_of_a_recording_reads_its_own_definition(tmp_path, capsys):
    recorded = [transition("a1", "field-test", seq, T0 + seq * 0.02) for seq in range(60)]
    path = tmp_path / "recording.mcap"
    ros2_style_mcap(path, recorded)
    store = tmp_path / "replay"
    code, out, err = run(capsys, "import", path, store)
    assert code == 0, err
    assert out.startswith("imported 60 new transitions")
    rows = rows_by_session(store)[("a1", "field-test")]
    np.testing.assert_array_equal(rows["seq"], np.arange(60))
    np.testing.assert_array_equal(rows["stamp"], [t.stamp for t in recorded])
    np.testing.assert_array_equal(rows["obs"], np.stack([t.obs for t in recorded]))
    np.testing.assert_array_equal(rows["reward"], np.float32([t.reward for t in recorded]))
    np.testing.assert_array_equal(rows["is_terminal"], [t.is_terminal for t in recorded])


def test_import_stops_at_a_corrupt_message_and_keeps_only_what_came_before(store_dir, tmp_path, capsys):
    bag = tmp_path / "bag"
    assert run(capsys, "export", store_dir, bag, "--robot", "a1")[0] == 0
    mcap = bag / "bag.mcap"
    intact = mcap.read_bytes()
    with AnyReader([bag]) as reader:
        raws = [raw for _, _, raw in reader.messages()]
    damaged = bytearray(intact)
    at = intact.find(raws[20])
    damaged[at : at + 4] = b"\xff\xff\xff\xff"  # CDR encapsulation header of message 21
    mcap.write_bytes(bytes(damaged))

    copy = tmp_path / "copy"
    code, _, err = run(capsys, "import", bag, copy)
    assert code == 1
    assert "damaged at Transition message 21" in err and "the 20 new transitions before it are stored" in err
    rows = rows_by_session(copy)[("a1", "morning")]
    original = rows_by_session(store_dir)[("a1", "morning")]
    for column in original:
        np.testing.assert_array_equal(rows[column], original[column][:20])

    mcap.write_bytes(intact)  # repaired: a second import adds exactly the rest
    code, out, _ = run(capsys, "import", bag, copy)
    assert code == 0 and out.startswith("imported 35 new transitions") and "(20 already stored, skipped)" in out
    assert_same_rows(rows_by_session(copy), {("a1", "morning"): original})


def test_import_detects_a_checksum_mismatch(tmp_path, capsys):
    recorded = [transition("a1", "s", seq, T0 + seq * 0.02) for seq in range(60)]
    path = tmp_path / "recording.mcap"
    raws = ros2_style_mcap(path, recorded)
    data = bytearray(path.read_bytes())
    data[data.find(raws[45]) + len(raws[45]) - 1] ^= 0x40  # one bit of one float: only the CRC can tell
    path.write_bytes(bytes(data))
    store = tmp_path / "replay"
    code, _, err = run(capsys, "import", path, store)
    assert code == 1 and "Chunk checksum mismatch" in err
    seqs = rows_by_session(store)[("a1", "s")]["seq"]
    assert 0 < len(seqs) <= 45  # whole chunks before the damaged one
    np.testing.assert_array_equal(seqs, np.arange(len(seqs)))


def test_import_refuses_truncated_bags_and_other_topics_without_creating_the_store(store_dir, tmp_path, capsys):
    bag = tmp_path / "bag"
    assert run(capsys, "export", store_dir, bag)[0] == 0
    mcap = bag / "bag.mcap"
    mcap.write_bytes(mcap.read_bytes()[:-500])  # recording cut off: no summary, no footer
    code, _, err = run(capsys, "import", bag, tmp_path / "a")
    assert code == 1 and f"cannot read bag {bag}" in err and "ros2 bag reindex" in err
    assert not (tmp_path / "a").exists()

    chatter = tmp_path / "chatter"
    typestore = transition_typestore()
    with BagWriter(chatter, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=typestore)
        msg = typestore.types["std_msgs/msg/String"](data="hello")
        writer.write(connection, 1, typestore.serialize_cdr(msg, "std_msgs/msg/String"))
    code, _, err = run(capsys, "import", chatter, tmp_path / "b")
    assert code == 1
    assert f"{chatter} has no a topic of type {TRANSITION_MSGTYPE}; it holds /chatter (std_msgs/msg/String)" in err
    assert not (tmp_path / "b").exists()

    code, _, err = run(capsys, "import", tmp_path / "missing", tmp_path / "c")
    assert code == 1 and "does not exist" in err


def test_output_is_exactly_what_was_asked(store_dir, tmp_path, capsys):
    code, _, err = run(capsys, "export", store_dir, tmp_path / "out.mcap")
    assert code == 1 and "a rosbag2 bag is a directory" in err and f"{tmp_path / 'out'}/out.mcap" in err
    assert list(tmp_path.glob("out*")) == []

    code, out, _ = run(capsys, "export", store_dir, tmp_path / "steps.data", "--format", "npz")
    assert code == 0 and out == f"wrote 95 steps to npz file {tmp_path / 'steps.data'}\n"
    assert list(tmp_path.glob("steps*")) == [tmp_path / "steps.data"]
    with np.load(tmp_path / "steps.data") as data:
        assert data["obs"].shape == (95, OBS)

    code, _, err = run(capsys, "export", store_dir, tmp_path / "steps.data", "--format", "npz")
    assert code == 1 and "already exists" in err
    code, _, err = run(capsys, "export", store_dir, tmp_path / "steps.parquet")
    assert code == 1 and "pass --format" in err
    code, _, err = run(capsys, "export", store_dir, tmp_path / "x.csv", "--topic", "/t")
    assert code == 1 and "--topic applies to --format rosbag2 only" in err
    code, _, err = run(capsys, "export", store_dir, tmp_path / "bag", "--robot-config", "a1_sim")
    assert code == 1 and "a bag has none" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replay", "steps.data"]


def test_csv_rows_read_back_identical(store_dir, tmp_path, capsys):
    out = tmp_path / "all.csv"
    code, _, err = run(capsys, "export", store_dir, out)
    assert code == 0 and "columns are numbered" in err
    header, rows = read_csv(out)
    assert header[9:] == [f"obs.{i}" for i in range(OBS)] + [f"action.{i}" for i in range(ACT)]
    assert len(rows) == 95 and all(len(r) == len(header) for r in rows)
    for key, stored in rows_by_session(store_dir).items():
        mine = [r for r in rows if tuple(r[:2]) == key]
        np.testing.assert_array_equal([int(r[2]) for r in mine], stored["seq"])
        np.testing.assert_array_equal([float(r[3]) for r in mine], stored["stamp"])
        np.testing.assert_array_equal([int(r[4]) for r in mine], stored["policy_version"])
        np.testing.assert_array_equal(np.float32([float(r[5]) for r in mine]), stored["reward"])
        np.testing.assert_array_equal([[r[i] == "1" for i in (6, 7, 8)] for r in mine],
                                      np.stack([stored["is_first"], stored["is_last"], stored["is_terminal"]], 1))
        np.testing.assert_array_equal(np.float32([[float(v) for v in r[9:]] for r in mine]),
                                      np.hstack([stored["obs"], stored["action"]]))


def test_a_stamp_outside_builtin_interfaces_time_stops_the_export_and_leaves_nothing(tmp_path, capsys):
    directory = tmp_path / "replay"
    with ReplayStore(directory, obs_dim=OBS, act_dim=ACT, chunk_length=4) as store:
        for seq in range(10):
            store.add(transition("a1", "s", seq, T0 + seq if seq < 7 else -1.0))
    code, _, err = run(capsys, "export", directory, tmp_path / "bags" / "bag")
    assert code == 1 and "a1/s seq 7: stamp -1.0 s does not fit builtin_interfaces/Time" in err
    assert list((tmp_path / "bags").iterdir()) == []


def write_a1_store(directory: Path, *, with_spec: bool) -> Path:
    """A store shaped like the simulated A1's (obs_dim 46, act_dim 12), with or without its spec."""
    spec = load_robot_config("a1_sim").policy_spec()
    rng = np.random.default_rng(1)
    kwargs = {"spec": spec} if with_spec else {}
    with ReplayStore(directory, obs_dim=spec.obs_dim, act_dim=spec.act_dim, **kwargs) as store:
        for seq in range(12):
            store.add(Transition(
                "a1_sim", "s", seq, rng.normal(size=spec.obs_dim).astype(np.float32),
                rng.uniform(-1, 1, spec.act_dim).astype(np.float32), float(rng.normal()),
                seq == 0, seq == 11, False, 2, T0 + seq / 50,
            ))
    return directory


@pytest.fixture
def a1_store(tmp_path) -> Path:
    return write_a1_store(tmp_path / "a1", with_spec=False)


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def test_csv_columns_are_named_from_the_robot_config(a1_store, tmp_path, capsys):
    out = tmp_path / "a1.csv"
    code, printed, err = run(capsys, "export", a1_store, out, "--robot-config", "a1_sim")
    assert code == 0 and printed == f"wrote 12 steps to csv file {out}\n" and "numbered" not in err
    header, rows = read_csv(out)
    assert header[:11] == [
        "robot_id", "session_id", "seq", "stamp", "policy_version", "reward", "is_first", "is_last",
        "is_terminal", "obs.joint_pos.FR_hip_joint", "obs.joint_pos.FR_upper_joint",
    ]
    for name in ("obs.joint_vel.RL_lower_joint", "obs.base_ang_vel.z", "obs.projected_gravity.x",
                 "obs.foot_contacts.3", "obs.prev_action.FL_hip_joint", "action.RL_lower_joint"):
        assert name in header
    assert len(header) == 9 + 46 + 12 and len(set(header)) == len(header)
    assert header[-12:] == [f"action.{j}" for j in load_robot_config("a1_sim").joint_names]
    stored = rows_by_session(a1_store)[("a1_sim", "s")]
    assert [r[:3] for r in rows] == [["a1_sim", "s", str(i)] for i in range(12)]
    # Every value reads back to the identical number.
    np.testing.assert_array_equal([float(r[3]) for r in rows], stored["stamp"])
    np.testing.assert_array_equal(np.float32([[float(v) for v in r[9:55]] for r in rows]), stored["obs"])
    np.testing.assert_array_equal(np.float32([[float(v) for v in r[55:]] for r in rows]), stored["action"])
    assert [r[6:9] for r in rows][-1] == ["0", "1", "0"]


def test_npz_names_columns_from_the_store_spec_or_numbers_them(a1_store, tmp_path, capsys):
    numbered = tmp_path / "numbered.npz"
    code, _, err = run(capsys, "export", a1_store, numbered)
    assert code == 0 and "columns are numbered" in err and "--robot-config" in err
    with np.load(numbered) as data:
        assert list(data["obs_names"][:2]) == ["obs.0", "obs.1"] and data["action_names"][-1] == "action.11"

    # A store that carries its observation spec (written by the replay node) names them itself.
    spec = load_robot_config("a1_sim").policy_spec()
    with_spec = write_a1_store(tmp_path / "a1_with_spec", with_spec=True)
    named = tmp_path / "named.npz"
    code, _, err = run(capsys, "export", with_spec, named)
    assert code == 0 and "numbered" not in err
    obs_names, action_names = column_names(spec, 46, 12)
    with np.load(named) as data:
        assert list(data["obs_names"]) == obs_names and list(data["action_names"]) == action_names
        assert data["obs_names"][24] == "obs.base_ang_vel.x"
        assert data["obs"].shape == (12, 46)


def test_a_spec_of_another_shape_is_refused(store_dir, tmp_path, capsys):
    code, _, err = run(capsys, "export", store_dir, tmp_path / "x.csv", "--robot-config", "a1_sim")
    assert code == 1 and "obs_dim=46" in err and "obs_dim=5" in err
    assert not (tmp_path / "x.csv").exists()
    code, _, err = run(capsys, "export", store_dir, tmp_path / "x.csv", "--robot-config", "no_such_robot")
    assert code == 1 and "no_such_robot" in err and "not found" in err
