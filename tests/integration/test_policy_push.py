"""`dreamer-policy push` against a running control node over DDS: a bundle signed with the robot's key is
accepted (exit 0), a forged one is refused with the robot's reason (exit 1), a version the robot already
holds is not pushed again (exit 1), and no robot in the namespace means no answer (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from stack_harness import NodeProcesses

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config
from dreamer_core.deploy import build_bundle, generate_keypair, load_private_key, save_bundle_file
from dreamer_core.deploy.export import export_agent
from dreamer_core.robots.config import load_robot_config

pytestmark = pytest.mark.ros

DREAMER_POLICY = Path(sys.executable).parent / "dreamer-policy"


def push(bundle: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(DREAMER_POLICY), "push", str(bundle), *extra], env=env, capture_output=True,
                          text=True, timeout=300)


def test_push_reports_the_robots_verdict(tmp_path, ros_env):
    config = load_robot_config("a1_sim")
    keys = generate_keypair(tmp_path / "keys")[0].parent
    forger = generate_keypair(tmp_path / "forger")[0]
    onnx = export_agent(Agent(config.obs_dim, config.act_dim, load_agent_config("xs")))
    signed, forged = (
        save_bundle_file(build_bundle(onnx, config.policy_spec(), version=version, training_step=0, preset="xs",
                                      private_key=load_private_key(key)), tmp_path / f"v{version}.bundle")
        for version, key in ((1, keys / "policy_signing.key"), (2, forger)))
    nodes = NodeProcesses(tmp_path / "run", ros_env, robot="a1_sim", keys_dir=keys)
    nodes.start("control_node")
    try:
        accepted = push(signed, ros_env, "--timeout", "240")
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr + nodes.log("control_node")
        assert "accepted: the robot validated policy v1" in accepted.stdout
        refused = push(forged, ros_env, "--timeout", "120")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "refused by the robot: v2: signature_invalid" in refused.stderr
        again = push(signed, ros_env, "--timeout", "120")
        assert again.returncode == 1 and "already holds policy v1" in again.stderr
        nobody = push(signed, ros_env, "--namespace", "nobody", "--timeout", "3")
        assert nobody.returncode == 2 and "no control node of robot 'a1_sim' in namespace /nobody" in nobody.stderr
    finally:
        nodes.stop_all()
    assert "policy bundle v2 refused" in nodes.log("control_node")
