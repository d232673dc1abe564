"""launch_ros descriptions of the three stacks, shared by the files in launch/.

Only the standard launch/launch_ros API is used. The node list and parameters
come from dreamer_ros.stacks, the same source the `dreamer-stack` runner uses
where launch_ros is not installed. Imported by launch files only: it needs
launch and launch_ros.
"""

import os
import sys

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dreamer_ros.keystore import KeystoreError, use_keystore
from dreamer_ros.stacks import DEFAULT_PRESET, check_signing_keys, stack_nodes
from launch import LaunchDescription


def _nodes(context, stack):
    """The stack's Node actions; an unusable input (keys, params file, keystore) ends the launch with
    status 2 and its reason, as `dreamer-stack` does, before any node starts."""
    try:
        return _stack_nodes(context, stack)
    except (OSError, ValueError, KeystoreError) as exc:  # the message names the file or setting and what to do
        print(f"[ERROR] [launch]: cannot start, nothing was started: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None  # not an Exception: launch would report it as its own error, status 1


def _stack_nodes(context, stack):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    run_dir = os.path.expanduser(arg("run_dir"))
    keys_dir = os.path.expanduser(arg("keys_dir"))
    # Raises before any node starts when a key is missing: keys come from `dreamer-policy keygen`.
    check_signing_keys(stack, keys_dir)
    specs = stack_nodes(
        stack,
        robot=arg("robot"),
        config_dir=os.path.join(get_package_share_directory("dreamer_ros"), "config"),
        run_dir=run_dir,
        namespace=arg("namespace"),
        keys_dir=keys_dir,
        allow_unsigned=arg("allow_unsigned").lower() == "true",
        preset=arg("preset"),
        # Raises ParamsFileError before any node starts when the file is unusable.
        params_file=os.path.expanduser(arg("params_file")) if arg("params_file") else None,
    )
    env, warnings = None, []
    if arg("keystore"):
        # Raises KeystoreError before any node starts if an enclave is missing or stale.
        env, warnings = use_keystore(os.path.expanduser(arg("keystore")), specs, robot=arg("robot"), stack=stack,
                                     namespace=arg("namespace"))
    return [LogInfo(msg=f"WARNING: {warning}") for warning in warnings] + [
        Node(
            package="dreamer_ros",
            executable=spec.executable,
            name=spec.name,
            namespace=spec.namespace,
            parameters=spec.parameters,
            ros_arguments=["--enclave", spec.enclave] if spec.enclave else None,
            additional_env=env,
            output="screen",
        )
        for spec in specs
    ]


def stack_launch_description(stack: str):
    """Launch arguments and nodes of `stack` (sim, onboard, offboard) for launch_ros."""
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="a1_sim", description="robot config name or YAML path"),
            DeclareLaunchArgument("namespace", default_value="", description="namespace of this robot's nodes"),
            DeclareLaunchArgument("run_dir", default_value="~/dreamer_runs/latest",
                                  description="replay data, checkpoints, bundles, TensorBoard events"),
            DeclareLaunchArgument("keys_dir", default_value="~/dreamer_runs/keys",
                                  description="policy signing keys, made by `dreamer-policy keygen --out DIR`"),
            DeclareLaunchArgument("allow_unsigned", default_value="false",
                                  description="DEVELOPMENT ONLY: accept unsigned policy bundles"),
            DeclareLaunchArgument("preset", default_value=DEFAULT_PRESET, description="learner model preset"),
            DeclareLaunchArgument("keystore", default_value="",
                                  description="SROS2 keystore: authenticate, encrypt, enforce permissions"),
            DeclareLaunchArgument("params_file", default_value="",
                                  description="ROS params file for the nodes, over the installed defaults"),
            OpaqueFunction(function=_nodes, args=[stack]),
        ]
    )
