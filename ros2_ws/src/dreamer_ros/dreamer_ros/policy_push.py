"""`dreamer-policy push BUNDLE --namespace NS`: publish a policy bundle to a robot and wait for its verdict.

`dreamer-policy push` (dreamer_core, no ROS) hands over to this module. It watches the robot's
control node on /diagnostics, publishes the bundle on the robot's bundle topic (reliable,
transient local, as the learner does) and reads the verdict from the control node's
diagnostics: the version among `held_versions` (or running) = accepted; a new refusal whose
`last_rejection` names the version = refused. The control node is found by its namespace (in the
ROS graph) and its robot_id (the status's hardware_id), so robot_ids must be unique on one graph.
Exit status: 0 accepted, 1 refused or not pushed,
2 no robot answered in time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from dreamer_msgs.msg import PolicyBundle as PolicyBundleMsg
from rclpy.utilities import remove_ros_args

from dreamer_core.deploy import load_bundle_file
from dreamer_core.deploy.cli import add_push_arguments
from dreamer_ros import qos
from dreamer_ros.conversions import bundle_to_msg, status_node
from dreamer_ros.params import load_installed_robot_config
from dreamer_ros.stacks import absolute_namespace

ACCEPTED, REFUSED, NO_ANSWER = 0, 1, 2
# Where a refusal's reason code is explained.
REASONS_DOC = "docs/policy_bundles.md#checks-in-order-and-refusal-reasons"


@dataclass(frozen=True)
class RobotStatus:
    """What the control node's diagnostics say about its policies."""

    running: int
    held: frozenset[int]
    refused: int  # bundles refused since the node started
    last_rejection: str  # "v<N>: <reason>"
    pinned: str

    @classmethod
    def from_values(cls, values: dict[str, str]) -> RobotStatus:
        held = frozenset(int(v) for v in values.get("held_versions", "").split(",") if v)
        return cls(running=int(values["policy_version"]), held=held, refused=int(values["bundles_refused"]),
                   last_rejection=values.get("last_rejection", ""), pinned=values.get("pinned", "none"))

    def holds(self, version: int) -> bool:
        return version == self.running or version in self.held


def verdict(version: int, before: RobotStatus, now: RobotStatus) -> tuple[int, str] | None:
    """The robot's answer about `version` once its diagnostics show one, else None (still validating)."""
    if now.holds(version):
        where = "running it" if now.running == version else f"held (running v{now.running}, pinned {now.pinned})"
        return ACCEPTED, f"accepted: the robot validated policy v{version}; {where}"
    if now.refused > before.refused and now.last_rejection.startswith(f"v{version}:"):
        return REFUSED, f"refused by the robot: {now.last_rejection} (reasons: {REASONS_DOC})"
    return None


class Pusher:
    """A short-lived operator node in the robot's namespace: watches the control node, publishes once."""

    def __init__(self, config, namespace: str, robot_id: str):
        self.namespace = absolute_namespace(namespace) or "/"
        # operator*: the node names the SROS2 operator enclave covers (dreamer_ros.ros_graph).
        self.node = rclpy.create_node(f"operator_policy_push_{os.getpid()}", namespace=self.namespace)
        self.robot_id = robot_id
        self.status: RobotStatus | None = None
        self.topic = self.node.resolve_topic_name(config.topics.policy_bundles)
        self.diagnostics = self.node.resolve_topic_name(config.topics.diagnostics)
        self._publisher = self.node.create_publisher(PolicyBundleMsg, config.topics.policy_bundles,
                                                     qos.POLICY_BUNDLE)
        self.node.create_subscription(DiagnosticArray, config.topics.diagnostics, self._on_diagnostics, 50)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status_node(status) == "control_node" and status.hardware_id == self.robot_id:
                try:
                    self.status = RobotStatus.from_values({kv.key: kv.value for kv in status.values})
                except (KeyError, ValueError):  # a control node that does not report these keys
                    continue

    def control_node_present(self) -> bool:
        """A control node runs in the robot's namespace (/diagnostics itself is shared by every robot)."""
        return ("control_node", self.namespace) in self.node.get_node_names_and_namespaces()

    def wait_for_status(self, deadline: float) -> RobotStatus | None:
        """The next status of the robot's control node to arrive, or None at the deadline."""
        self.status = None
        while time.monotonic() < deadline:
            rclpy.spin_once(self.node, timeout_sec=0.1)
            if self.status is not None and self.control_node_present():
                return self.status
        return None

    def publish(self, bundle) -> None:
        self._publisher.publish(bundle_to_msg(bundle))


def push(args: argparse.Namespace) -> int:
    try:
        bundle = load_bundle_file(args.bundle)
        config = load_installed_robot_config(args.robot_config or bundle.robot_id)
    except (OSError, ValueError) as exc:  # an unreadable bundle, an unknown or invalid robot config
        print(f"error: {exc}", file=sys.stderr)
        if not args.robot_config:
            print("(the robot config is looked up by the bundle's robot_id; name it with --robot-config)",
                  file=sys.stderr)
        return REFUSED
    deadline = time.monotonic() + args.timeout
    pusher = Pusher(config, args.namespace, bundle.robot_id)
    before = pusher.wait_for_status(deadline)
    if before is None:
        print(f"no answer: no control node of robot {bundle.robot_id!r} in namespace {pusher.namespace} reported on "
              f"{pusher.diagnostics} within {args.timeout:g} s (is it running, in this ROS_DOMAIN_ID?)",
              file=sys.stderr)
        return NO_ANSWER
    if before.holds(bundle.version):
        print(f"not pushed: robot {bundle.robot_id} already holds policy v{bundle.version} and ignores another "
              f"bundle with that version; export one with a higher --version", file=sys.stderr)
        return REFUSED
    pusher.publish(bundle)
    print(f"published policy v{bundle.version} for {bundle.robot_id} on {pusher.topic}; waiting for the robot ...",
          flush=True)
    while (now := pusher.wait_for_status(deadline)) is not None:
        answer = verdict(bundle.version, before, now)
        if answer is not None:
            code, text = answer
            print(text, file=sys.stdout if code == ACCEPTED else sys.stderr)
            return code
    print(f"no answer: robot {bundle.robot_id} neither accepted nor refused v{bundle.version} within "
          f"{args.timeout:g} s (see its /diagnostics and log)", file=sys.stderr)
    return NO_ANSWER


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="dreamer-policy push", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_push_arguments(parser)
    args = parser.parse_args(remove_ros_args(["push", *argv])[1:])
    rclpy.init(args=["push", *argv])
    try:
        return push(args)
    except KeyboardInterrupt:
        print("interrupted: no verdict awaited", file=sys.stderr)
        return NO_ANSWER
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
