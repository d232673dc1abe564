"""The canary on the simulated A1 over ROS (separate processes, real DDS): a validly signed but bad
policy is accepted, runs as a canary, is rolled back by the control node itself, reported (PolicyEvent
and /diagnostics) and refused when it comes again; the previous version takes over at a tick boundary
and a command goes out on every tick throughout. An operator blocks a version with ~/block_policy.

The robot config is a1_sim with 2-second episodes; its canary section is left at a1_sim's values.
Correctness only: nothing here is timed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rclpy
import torch
import yaml
from dreamer_msgs.msg import PolicyEvent as PolicyEventMsg
from dreamer_msgs.srv import PolicyOverride
from stack_harness import SLOW_SIM_STALE_PERIODS, Monitor, NodeProcesses

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config
from dreamer_core.deploy import PolicyRuntime, build_bundle, generate_keypair, load_private_key
from dreamer_core.deploy.export import export_agent
from dreamer_core.robots.config import parse_robot_config, resolve_config_path
from dreamer_core.storage import ReplayStore
from dreamer_core.storage.episodes import episodes
from dreamer_ros import qos
from dreamer_ros.conversions import bundle_to_msg

# Each wait may take MIN_WAIT_S on a loaded machine: more room than the suite-wide 600 s hang limit.
pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(1800)]


def constant_policy(config, mean_action: np.ndarray, seed: int) -> bytes:
    """The ONNX tick of a real xs agent whose actor always means ``mean_action`` (with its smallest std),
    through the real export path."""
    torch.set_num_threads(1)
    agent = Agent(config.obs_dim, config.act_dim, load_agent_config("xs"), seed=seed)
    out = agent.actor.net.out
    with torch.no_grad():
        out.weight.zero_()
        out.bias[: config.act_dim] = torch.atanh(torch.as_tensor(mean_action, dtype=torch.float32))
        out.bias[config.act_dim:] = -20.0  # std -> the actor's minimum
    return export_agent(agent)


def test_a_bad_canary_is_rolled_back_reported_and_refused_again(tmp_path, ros_env):
    config = yaml.safe_load(resolve_config_path("a1_sim").read_text())
    config["episode"] = {"max_seconds": 2.0}  # short episodes; canary thresholds stay a1_sim's
    config["safety"]["stale_sensor_periods"] = SLOW_SIM_STALE_PERIODS
    robot = tmp_path / "a1_canary.yaml"
    robot.write_text(yaml.safe_dump(config))
    model = parse_robot_config(config)
    spec, topics = model.policy_spec(), model.topics
    keys = generate_keypair(tmp_path / "keys")[0].parent
    key = load_private_key(keys / "policy_signing.key")
    run = tmp_path / "run"
    stack = NodeProcesses(run, ros_env, robot=str(robot), keys_dir=keys)
    rclpy.init()
    monitor = Monitor(model)
    received: list[PolicyEventMsg] = []
    monitor.node.create_subscription(PolicyEventMsg, topics.policy_events, received.append, qos.POLICY_EVENT)
    block = monitor.node.create_client(PolicyOverride, "/control_node/block_policy")

    def event(version: int, name: str) -> PolicyEventMsg | None:
        return next((e for e in list(received) if e.version == version and e.event == name), None)

    def diag(key_: str, default=""):
        return monitor.value("control_node", key_, default)

    try:
        for name in ("replay_node", "sim_robot", "control_node"):
            stack.start(name)
        # v1 stands in the default pose; v2 drives every joint to the end of its action range.
        stand = constant_policy(model, np.zeros(model.act_dim), seed=1)
        extreme = np.tile([0.99, -0.99, 0.99], 4)
        bad = build_bundle(constant_policy(model, extreme, seed=2), spec, 2, 0, "xs", key)
        good = build_bundle(stand, spec, 1, 0, "xs", key)
        runtime = PolicyRuntime.load(bad, expected_spec=spec, public_key=key.public_key())
        assert np.allclose(runtime.step(np.zeros(spec.obs_dim, np.float32), explore=False), extreme, atol=1e-3)

        # The initial policy's complete episodes are the first canary's baseline.
        monitor.wait_for(lambda: diag("episode_return_version") == "0"
                         and int(diag("episode_return_count", 0)) >= model.canary.min_baseline_episodes,
                         180, "complete episodes of the initial policy")
        monitor.publish_bundle(bundle_to_msg(good), topics.policy_bundles)
        monitor.wait_for(lambda: event(1, "canary_passed") or event(1, "rolled_back"), 180, "v1's verdict")
        assert event(1, "canary_started") and event(1, "canary_passed"), diag("last_verdict")
        monitor.wait_for(lambda: int(diag("episode_return_count", 0)) >= model.canary.min_baseline_episodes
                         and diag("episode_return_version") == "1", 120, "complete episodes of v1")
        commandless = int(diag("ticks_without_command"))
        ticks_before = int(diag("ticks"))

        # The bad bundle passes every static check and runs as a canary ...
        monitor.publish_bundle(bundle_to_msg(bad), topics.policy_bundles)
        monitor.wait_for(lambda: event(2, "canary_started"), 60, "v2's canary to start")
        # ... until the control node rolls it back by itself.
        monitor.wait_for(lambda: event(2, "rolled_back") or event(2, "canary_passed"), 180, "v2's verdict")
        rolled_back = event(2, "rolled_back")
        assert rolled_back is not None, f"the bad canary passed: {event(2, 'canary_passed').reason}"
        values = json.loads(rolled_back.values_json)
        # Judged after its episodes, or earlier once the rest could not lift its mean over the threshold.
        assert 1 <= values["episodes"] <= model.canary.episodes and values["return_check"] == "failed"
        assert values["return_mean"] < values["return_threshold"] and values["baseline_version"] == 1
        assert values["fallback_version"] == 1 and rolled_back.reason.startswith("return ")
        assert rolled_back.robot_id == model.robot_id
        monitor.wait_for(lambda: diag("last_verdict").startswith("v2 rolled back to v1: return ")
                         and diag("policy_version") == "1", 30, "the rollback on /diagnostics")
        assert diag("rejected_versions") == "2" and diag("canary") == "none"

        # Published again, the same bundle is refused for good.
        monitor.publish_bundle(bundle_to_msg(bad), topics.policy_bundles)
        monitor.wait_for(lambda: diag("last_rejection") == "v2: version_rejected", 30, "v2 refused")

        # An operator blocks v3 before it exists; when it is published it is refused too.
        assert block.wait_for_service(timeout_sec=10.0)
        future = block.call_async(PolicyOverride.Request(version=3, reason="not on this robot"))
        monitor.wait_for(future.done, 10, "the block_policy reply")
        assert future.result().success, future.result().message
        monitor.publish_bundle(bundle_to_msg(build_bundle(stand, spec, 3, 0, "xs", key)), topics.policy_bundles)
        monitor.wait_for(lambda: diag("last_rejection") == "v3: version_rejected", 30, "v3 refused")
        monitor.wait_for(lambda: event(3, "blocked"), 10, "the blocked event")
        assert json.loads(event(3, "blocked").values_json)["operator_reason"] == "not on this robot"

        # A command went out on every tick throughout: the node publishes one whenever its tick has one.
        assert int(diag("ticks_without_command")) == commandless and int(diag("ticks")) > ticks_before
        assert diag("policy_version") == "1"
    finally:
        stack.stop_all_once_stored(monitor)
        monitor.close()
        rclpy.try_shutdown()
        print(stack.log_tails())  # shown when the test fails

    with ReplayStore(run / "replay", readonly=True) as store:
        found = list(episodes(store.iter_steps()))
        rows = {int(s): (int(v), bool(f)) for _, cols in store.iter_steps()
                for s, v, f in zip(cols["seq"], cols["policy_version"], cols["is_first"], strict=True)}
    # Every episode ran one version; the canary was judged on exactly its complete episodes in the store:
    # those that reached the time limit or fell (a loaded machine also cuts some at stale sensors).
    assert not any(e.mixed_versions for e in found)
    canary = [e for e in found if e.policy_version == 2]
    judged = [e.ret for e in canary if e.terminal or e.steps == model.episode_steps]
    assert all(e.complete for e in canary)
    assert values["returns"] == pytest.approx(judged, rel=1e-4, abs=1e-3)
    # v1 took over at the tick after v2's last row, with a fresh episode.
    assert rows[canary[-1].last_seq + 1] == (1, True)
