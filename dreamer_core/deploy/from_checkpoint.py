"""A signed policy bundle from a learner checkpoint (learner side: needs torch).

The same path the learner takes when it promotes a candidate (`export_agent`, then
`build_bundle` with its private key), for a checkpoint picked by hand: `dreamer-policy export`.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dreamer_core.algorithms.agent import Agent, read_checkpoint
from dreamer_core.deploy.bundle import PolicyBundle, build_bundle
from dreamer_core.deploy.export import export_agent
from dreamer_core.deploy.runtime import PolicyRuntime
from dreamer_core.runners.learner import LearnerState, spec_mismatch
from dreamer_core.spec import PolicySpec


def bundle_from_checkpoint(checkpoint: str | Path, robot_config, private_key: Ed25519PrivateKey,
                           version: int | None = None) -> PolicyBundle:
    """Export the actor of a learner checkpoint as a signed bundle for ``robot_config``'s robot.

    ``version`` defaults to the checkpoint's last promoted version + 1. Refuses (ValueError naming
    both values) a checkpoint without learner state or trained for another policy spec, and checks
    the result as the robot would before returning it.
    """
    payload = read_checkpoint(checkpoint, "cpu")
    if "learner" not in payload["extra"]:
        raise ValueError(f"{checkpoint} has no learner state, so no record of the policy spec it was trained for; "
                         "export the agent.ckpt a learner wrote")
    state = LearnerState.model_validate(payload["extra"]["learner"])
    spec = robot_config.policy_spec()
    problems = spec_mismatch("checkpoint", PolicySpec.from_dict(state.spec), spec)
    if problems:
        raise ValueError(f"{checkpoint} does not fit robot config {robot_config.robot_id!r}: {problems[0]}")
    version = state.policy_version + 1 if version is None else version
    if version < 1:
        raise ValueError(f"--version must be at least 1 (0 is the robot's initial policy), got {version}")
    agent = Agent.from_checkpoint(payload, "cpu")
    bundle = build_bundle(export_agent(agent), spec, version=version, training_step=agent.updates,
                          preset=agent.config.name, private_key=private_key)
    PolicyRuntime.load(bundle, expected_spec=spec, public_key=private_key.public_key())
    return bundle
