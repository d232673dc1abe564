"""The ROS graph of a stack: what each participant publishes, subscribes, serves and calls.

This is the one description the SROS2 permissions are generated from
(`dreamer_ros.keystore`). tests/integration/test_ros_graph.py starts the real
nodes and checks every topic and service they create against it, so a node that
starts using a new topic fails that test until it is listed here.

ROS-free: names are plain strings, resolved the way rcl resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamer_core.robots.config import RobotConfig, TopicsConfig
from dreamer_ros.stacks import NodeSpec, absolute_namespace

# Services of control_node that change what the robot does: only the operator enclave may call them.
OPERATOR_SERVICES = ("pin_policy", "rollback", "force_policy", "block_policy", "clear_estop", "set_exploration")
# What a lifecycle node serves and publishes besides its own interfaces (rclpy.lifecycle).
LIFECYCLE_SERVICES = ("change_state", "get_state", "get_available_states", "get_available_transitions",
                      "get_transition_graph")
# What every rclpy node serves: parameters, and the type description service (on by default since Jazzy).
NODE_SERVICES = ("describe_parameters", "get_parameter_types", "get_parameters", "list_parameters",
                 "set_parameters", "set_parameters_atomically", "get_type_description")
# rmw's own graph-discovery topic: a DDS topic without the rt/ prefix, used by every participant.
DISCOVERY_TOPIC = "ros_discovery_info"

OPERATOR = "operator"  # people: ros2 CLI / rqt on the operator's laptop
MONITOR = "monitor"  # dreamer-stack's read-only /diagnostics watcher ...
MONITOR_NODE = "dreamer_stack_monitor"  # ... and the name of its node


@dataclass
class Access:
    """Fully qualified ROS names one participant uses, by kind of use."""

    publish: set[str] = field(default_factory=set)
    subscribe: set[str] = field(default_factory=set)
    serve: set[str] = field(default_factory=set)
    call: set[str] = field(default_factory=set)

    def merge(self, other: Access) -> None:
        for kind in ("publish", "subscribe", "serve", "call"):
            getattr(self, kind).update(getattr(other, kind))

    def dds_topics(self) -> tuple[set[str], set[str]]:
        """(written, read) DDS topic names: what the DDS permissions must allow.

        A ROS topic /a/b is the DDS topic rt/a/b; a service /a/s is a request topic
        rq/a/sRequest (the client writes, the server reads) and a reply topic
        rr/a/sReply (the server writes, the client reads).
        """
        write = {DISCOVERY_TOPIC} | {"rt" + t for t in self.publish}
        read = {DISCOVERY_TOPIC} | {"rt" + t for t in self.subscribe}
        write |= {f"rr{s}Reply" for s in self.serve} | {f"rq{s}Request" for s in self.call}
        read |= {f"rq{s}Request" for s in self.serve} | {f"rr{s}Reply" for s in self.call}
        return write, read


def resolve(name: str, namespace: str, node: str) -> str:
    """The fully qualified ROS name of `name` used by node `node` in `namespace`."""
    ns = absolute_namespace(namespace)
    if name.startswith("/"):
        return name
    if name.startswith("~"):
        return f"{ns}/{node}{name[1:]}"
    return f"{ns}/{name}"


def enclave_path(namespace: str, participant: str) -> str:
    """SROS2 enclave of a participant: one per node, under the robot's namespace (/robot1/control_node)."""
    return f"{absolute_namespace(namespace)}/{participant}"


def _node_basics(spec: NodeSpec) -> Access:
    """What rclpy creates for every node: publishers of /rosout and /parameter_events, its own services."""
    def private(name):
        return resolve(f"~/{name}", spec.namespace, spec.name)

    return Access(publish={"/rosout", "/parameter_events"}, serve={private(s) for s in NODE_SERVICES})


def _override(spec: NodeSpec, key: str, default: str = "") -> str:
    """The last value the launch file / runner sets for parameter `key` of `spec` (dict overrides)."""
    value = default
    for item in spec.parameters:
        if isinstance(item, dict) and key in item:
            value = item[key]
    return value


def node_access(spec: NodeSpec, topics: TopicsConfig) -> Access:
    """What node `spec` publishes, subscribes, serves and calls with the robot's `topics`."""
    def name(topic):
        return resolve(topic, spec.namespace, spec.name)

    sensors = {name(t) for t in (topics.joint_states, topics.imu, topics.odometry, topics.foot_contacts) if t}
    access = _node_basics(spec)
    if spec.executable == "sim_robot":
        access.merge(Access(publish=sensors | {name(topics.diagnostics)}, subscribe={name(topics.command)},
                            serve={name("~/reset"), name("~/pause")}))
    elif spec.executable == "control_node":
        reset = _override(spec, "reset_service")
        access.merge(Access(
            publish={name(topics.command), name(topics.transitions), name(topics.diagnostics),
                     name(topics.policy_events), name("~/transition_event")},
            subscribe=sensors | {name(topics.estop), name(topics.policy_bundles)},
            serve={name(f"~/{s}") for s in (*OPERATOR_SERVICES, *LIFECYCLE_SERVICES)},
            call={name(reset)} if reset else set(),
        ))
    elif spec.executable == "replay_node":
        access.merge(Access(publish={name(topics.diagnostics)}, subscribe={name(topics.transitions)}))
    elif spec.executable == "learner_node":
        access.merge(Access(publish={name(topics.policy_bundles), name(topics.diagnostics)},
                            subscribe={name(topics.policy_events)}))
    else:
        raise ValueError(f"no graph description for executable {spec.executable!r}; add it to {__name__}")
    return access


def monitor_topics(topics: TopicsConfig, namespace: str) -> tuple[str, str]:
    """What dreamer-stack's monitor (in the root namespace) reads: /diagnostics, and the robot's policy
    events (in the robot's namespace)."""
    return resolve(topics.diagnostics, "", MONITOR_NODE), resolve(topics.policy_events, namespace, "")


def stack_graph(specs: list[NodeSpec], config: RobotConfig, namespace: str = "") -> dict[str, Access]:
    """Access per enclave for the nodes `specs`, the operator and dreamer-stack's monitor.

    The operator may call every service the nodes serve, read every topic and
    publish the e-stop; the nodes call nothing of each other's but what they
    need (the control node resets sim_robot in simulation). E-stop: every
    enclave may publish it. The control node latches on True and ignores False,
    so the topic can only stop the robot; releasing it is the `clear_estop`
    service, which only the operator may call.
    """
    topics = config.topics
    graph: dict[str, Access] = {}
    for spec in specs:
        graph.setdefault(enclave_path(spec.namespace, spec.name), Access()).merge(node_access(spec, topics))
    served = set().union(*(a.serve for a in graph.values()))
    published = set().union(*(a.publish for a in graph.values()))
    # The operator's tools are nodes too, with generated names: ros2 CLI's `/_ros2cli_<pid>` (and its
    # daemon's), or tools named operator* in the robot's namespace. They serve their own node services.
    own_nodes = ("/_ros2cli_*", resolve("operator*", namespace, ""))
    operator = Access(publish={"/rosout", "/parameter_events"}, subscribe=published | {"/parameter_events"},
                      serve={f"{node}/{s}" for node in own_nodes for s in NODE_SERVICES}, call=served)
    monitor = _node_basics(NodeSpec(executable=MONITOR_NODE, name=MONITOR_NODE))
    monitor.subscribe.update(monitor_topics(topics, namespace))
    graph[enclave_path(namespace, OPERATOR)] = operator
    graph[enclave_path(namespace, MONITOR)] = monitor
    estop = {resolve(topics.estop, s.namespace, s.name) for s in specs if s.executable == "control_node"}
    for access in graph.values():
        access.publish |= estop or {resolve(topics.estop, namespace, "")}
    return graph
