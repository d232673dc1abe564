"""Exported and imported bags against the real ROS 2 message type (rclpy serialization, the
colcon-built dreamer_msgs): the bytes `ros2 bag record` stores are the ones rclpy serializes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from dreamer_msgs.msg import Transition as TransitionMsg
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as BagWriter

from dreamer_core.storage import ReplayStore, Transition
from dreamer_core.storage.bag import message_definition, transition_typestore
from dreamer_core.storage.cli import main
from dreamer_core.storage.transition_msg import TRANSITION_MSGTYPE, stamp_parts, transition_from_msg

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
T0 = 1.7e9


def test_type_hash_is_the_one_ros_generates():
    built = REPO / "ros2_ws/install/dreamer_msgs/share/dreamer_msgs/msg/Transition.json"
    assert built.is_file(), "ros2_ws is not built; run make setup"
    hashes = json.loads(built.read_text())["type_hashes"]
    ros_hash = next(h["hash_string"] for h in hashes if h["type_name"] == TRANSITION_MSGTYPE)
    assert transition_typestore().hash_rihs01(TRANSITION_MSGTYPE) == ros_hash


def test_exported_messages_deserialize_with_rclpy(tmp_path, capsys):
    store_dir = tmp_path / "replay"
    rng = np.random.default_rng(0)
    with ReplayStore(store_dir, obs_dim=7, act_dim=2) as store:
        for seq in range(30):
            store.add(Transition("a1", "s", seq, rng.normal(size=7).astype(np.float32),
                                 rng.normal(size=2).astype(np.float32), float(seq) / 3, seq == 0, seq == 29,
                                 seq == 29, 4, T0 + seq * 0.02))
    assert main(["export", str(store_dir), str(tmp_path / "bag")]) == 0
    with ReplayStore(store_dir, readonly=True) as store:
        [(_, rows)] = list(store.iter_steps())
    with AnyReader([tmp_path / "bag"]) as reader:
        raws = [raw for _, _, raw in reader.messages()]
    assert len(raws) == 30
    for i, raw in enumerate(raws):
        msg = deserialize_message(bytes(raw), TransitionMsg)
        t = transition_from_msg(msg)  # what the replay node stores on receiving it
        assert (t.robot_id, t.session_id, t.seq, t.policy_version) == ("a1", "s", i, 4)
        assert t.stamp == rows["stamp"][i]
        np.testing.assert_array_equal(t.obs, rows["obs"][i])
        np.testing.assert_array_equal(t.action, rows["action"][i])
        assert np.float32(t.reward) == rows["reward"][i]
        assert (t.is_first, t.is_last, t.is_terminal) == (i == 0, i == 29, i == 29)


def test_import_of_rclpy_serialized_messages(tmp_path, capsys):
    """A bag holding what `ros2 bag record /transitions` stores: rclpy's CDR bytes."""
    typestore = transition_typestore()
    bag = tmp_path / "recorded"
    sent = []
    with BagWriter(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(
            "/a1/transitions", TRANSITION_MSGTYPE,
            msgdef=message_definition(typestore), rihs01=typestore.hash_rihs01(TRANSITION_MSGTYPE),
        )
        for seq in range(25):
            sec, nanosec = stamp_parts(T0 + 0.02 * seq)
            msg = TransitionMsg(robot_id="a1", session_id="field", seq=seq, obs=[seq, -1.5, 0.25],
                               action=[0.5 * seq], reward=0.1 * seq, is_first=seq == 0, policy_version=9)
            msg.header.stamp = Time(sec=sec, nanosec=nanosec)
            sent.append(transition_from_msg(msg))
            writer.write(connection, sec * 1_000_000_000 + nanosec, serialize_message(msg))
    store_dir = tmp_path / "replay"
    assert main(["import", str(bag), str(store_dir)]) == 0
    assert capsys.readouterr().out.startswith("imported 25 new transitions")
    with ReplayStore(store_dir, readonly=True) as store:
        [(info, rows)] = list(store.iter_steps())
    assert (info.robot_id, info.session_id, store.obs_dim, store.act_dim) == ("a1", "field", 3, 1)
    np.testing.assert_array_equal(rows["seq"], np.arange(25))
    np.testing.assert_array_equal(rows["stamp"], [t.stamp for t in sent])
    np.testing.assert_array_equal(rows["obs"], np.stack([t.obs for t in sent]))
    np.testing.assert_array_equal(rows["reward"], np.float32([t.reward for t in sent]))
    np.testing.assert_array_equal(rows["policy_version"], np.full(25, 9))
