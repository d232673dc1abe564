"""The graph description the SROS2 permissions come from matches what the real nodes create.

Starts the sim stack's four nodes (no security: this venv's Fast DDS has no
security plugins), reads each node's publishers, subscriptions, services and
clients through rclpy's graph API, and checks each one against the permissions
of that node's enclave in a keystore made by `dreamer-stack keystore create`. A
node that starts using a topic or service the description lacks fails here,
before it fails on a secured robot.
"""

from __future__ import annotations

import time

import pytest
import rclpy
from stack_harness import NodeProcesses

from dreamer_core.deploy import generate_keypair
from dreamer_ros import keystore
from dreamer_ros.keystore import allows, granted_topics, smime_content
from dreamer_ros.params import load_installed_robot_config
from dreamer_ros.ros_graph import MONITOR, MONITOR_NODE, Access, enclave_path
from dreamer_ros.stack_launcher import DiagnosticsWatcher
from dreamer_ros.stacks import STACKS

pytestmark = pytest.mark.ros

NAMESPACE = "robot1"  # written as in docs/real_robot_day.md; ROS makes it /robot1


def used_by(node, name: str, namespace: str) -> Access:
    """What node `namespace`/`name` has created, as the graph reports it (fully qualified names)."""
    def names(pairs):
        return {topic for topic, _types in pairs}

    return Access(publish=names(node.get_publisher_names_and_types_by_node(name, namespace)),
                  subscribe=names(node.get_subscriber_names_and_types_by_node(name, namespace)),
                  serve=names(node.get_service_names_and_types_by_node(name, namespace)),
                  call=names(node.get_client_names_and_types_by_node(name, namespace)))


def settled_graph(node, names: list[tuple[str, str]], ready, timeout: float) -> dict[tuple[str, str], Access]:
    """The nodes' graph entries once `ready` holds and two reads 2 s apart agree."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        present = set(node.get_node_names_and_namespaces())
        current = {n: used_by(node, *n) for n in names if n in present}
        if ready(current) and current == previous:
            return current
        previous = current
        time.sleep(2.0)
    raise AssertionError(f"graph did not settle in {timeout:.0f} s: {previous}")


def test_every_topic_and_service_the_nodes_use_is_in_their_permissions(tmp_path, ros_env):
    store = tmp_path / "keystore"
    keystore.create_keystore(store, keystore.graph_for("a1_sim", NAMESPACE, ["sim"]))
    nodes = NodeProcesses(tmp_path / "run", ros_env, robot="a1_sim", namespace=NAMESPACE,
                          keys_dir=generate_keypair(tmp_path / "keys")[0].parent)
    names = [(name, "/" + NAMESPACE) for name in STACKS["sim"]] + [(MONITOR_NODE, "/")]
    rclpy.init()
    # dreamer-stack's monitor, as the launcher runs it
    watcher = DiagnosticsWatcher.for_stack(load_installed_robot_config("a1_sim"), NAMESPACE)
    try:
        for name in STACKS["sim"]:
            nodes.start(name)

        def ready(graph):  # every node is up, the control node configured (its services come then)
            return len(graph) == len(names) and "/robot1/control_node/clear_estop" in graph[
                ("control_node", "/robot1")].serve

        graph = settled_graph(watcher.node, names, ready, timeout=240.0)
    finally:
        nodes.stop_all()
        watcher.close()
        rclpy.try_shutdown()
    lacking = []
    for (name, _ns), used in graph.items():
        enclave = enclave_path(NAMESPACE, MONITOR if name == MONITOR_NODE else name)
        signed = (store / "enclaves" / enclave.strip("/") / "permissions.p7s").read_bytes()
        may_write, may_read = granted_topics(smime_content(signed))
        write, read = used.dds_topics()
        lacking += [f"{enclave} writes {t}" for t in sorted(write) if not allows(may_write, t)]
        lacking += [f"{enclave} reads {t}" for t in sorted(read) if not allows(may_read, t)]
    assert not lacking, "used but not permitted (update dreamer_ros/ros_graph.py):\n" + "\n".join(lacking)
    # The graph really was read: the operator-only services and the data topics are among what was checked.
    control = graph[("control_node", "/robot1")]
    assert "/robot1/control_node/clear_estop" in control.serve and "/robot1/transitions" in control.publish
    assert "/robot1/transitions" in graph[("replay_node", "/robot1")].subscribe
