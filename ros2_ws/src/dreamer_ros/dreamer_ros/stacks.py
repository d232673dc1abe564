"""The three stacks (sim, onboard, offboard) as data.

Both the launch_ros files in launch/ and the `dreamer-stack` runner build their
processes from `stack_nodes`, so the two ways of starting the stack cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dreamer_core.config import DEFAULT_PRESET

# Stacks that run the learner, which signs bundles with the private key.
SIGNING_STACKS = ("sim", "offboard")

STACKS = {
    "sim": ("sim_robot", "control_node", "replay_node", "learner_node"),
    "onboard": ("control_node",),
    "offboard": ("replay_node", "learner_node"),
}


@dataclass
class NodeSpec:
    """One process: a dreamer_ros executable with its parameter files and overrides."""

    executable: str
    name: str
    namespace: str = ""
    parameters: list = field(default_factory=list)  # YAML file paths, then dicts of overrides
    enclave: str = ""  # SROS2 enclave (--enclave); set by dreamer_ros.keystore.use_keystore, empty = no security


def stack_nodes(stack: str, *, robot: str, config_dir: str | Path, run_dir: str | Path,
                namespace: str = "", keys_dir: str | Path | None = None,
                allow_unsigned: bool = False, preset: str = DEFAULT_PRESET) -> list[NodeSpec]:
    """The nodes of `stack` for `robot`, with parameter files from `config_dir`.

    `run_dir` holds what the run produces (replay/, learner/ with checkpoints,
    bundles and TensorBoard events); `keys_dir` the Ed25519 key pair
    (policy_signing.key on the learner host, policy_signing.pub on the robot).
    """
    if stack not in STACKS:
        raise ValueError(f"unknown stack {stack!r}; choose one of {sorted(STACKS)}")
    config_dir, run_dir = Path(config_dir), Path(run_dir)
    namespace = absolute_namespace(namespace)
    keys = Path(keys_dir) if keys_dir else run_dir / "keys"
    common = {"robot_config": robot}
    overrides = {
        "sim_robot": {},
        "control_node": {
            "public_key": str(keys / "policy_signing.pub"),
            "allow_unsigned": allow_unsigned,
            # In simulation the control node stands the robot up again after each episode.
            "reset_service": f"{namespace}/sim_robot/reset" if stack == "sim" else "",
            # A simulated robot's policy versions belong to this run (each run's learner starts at v1);
            # a real robot keeps them in its per-user default state directory.
            "state_dir": str(run_dir / "control_state") if stack == "sim" else "",
        },
        "replay_node": {"replay_dir": str(run_dir / "replay")},
        "learner_node": {
            "replay_dir": str(run_dir / "replay"),
            "run_dir": str(run_dir / "learner"),
            "private_key": str(keys / "policy_signing.key"),
            "preset": preset,
        },
    }
    specs = []
    for executable in STACKS[stack]:
        params = [str(config_dir / f"{executable}.yaml"), {**common, **overrides[executable]}]
        specs.append(NodeSpec(executable=executable, name=executable, namespace=namespace, parameters=params))
    return specs


def absolute_namespace(namespace: str) -> str:
    """'robot1' or '/robot1/' -> '/robot1', '' or '/' -> '': rcl's `__ns:=` takes absolute namespaces only,
    and the reset service name is built from it."""
    name = namespace.strip("/")
    return f"/{name}" if name else ""


def ensure_signing_keys(keys_dir: str | Path) -> Path:
    """Create a signing key pair in `keys_dir` if there is none.

    Used where the learner runs (sim and offboard stacks): the private key never
    leaves that host; copy `policy_signing.pub` to the robot's keys_dir.
    """
    from dreamer_core.deploy import generate_keypair

    keys_dir = Path(keys_dir)
    if not (keys_dir / "policy_signing.key").is_file():
        generate_keypair(keys_dir)
    return keys_dir
