"""The three stacks (sim, onboard, offboard) as data.

Both the launch_ros files in launch/ and the `dreamer-stack` runner build their
processes from `stack_nodes`, so the two ways of starting the stack cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dreamer_core.config import DEFAULT_PRESET
from dreamer_core.deploy.keys import PRIVATE_KEY_NAME, PUBLIC_KEY_NAME, load_private_key, load_public_key
from dreamer_core.report.run_layout import RunLayout

# Stacks that run the learner, which signs bundles with the private key (and keep replay data beside it).
SIGNING_STACKS = ("sim", "offboard")
# Key files each stack's nodes read: the learner signs with the private key, the control node verifies
# with the public one.
STACK_KEYS = {"sim": (PRIVATE_KEY_NAME, PUBLIC_KEY_NAME), "onboard": (PUBLIC_KEY_NAME,),
              "offboard": (PRIVATE_KEY_NAME,)}

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
    config_dir, run = Path(config_dir), RunLayout(Path(run_dir))
    namespace = absolute_namespace(namespace)
    keys = Path(keys_dir) if keys_dir else run.root / "keys"
    common = {"robot_config": robot}
    overrides = {
        "sim_robot": {},
        "control_node": {
            "public_key": str(keys / PUBLIC_KEY_NAME),
            "allow_unsigned": allow_unsigned,
            # In simulation the control node stands the robot up again after each episode.
            "reset_service": f"{namespace}/sim_robot/reset" if stack == "sim" else "",
            # A simulated robot's policy versions belong to this run (each run's learner starts at v1);
            # a real robot keeps them in its per-user default state directory.
            "state_dir": str(run.control_state) if stack == "sim" else "",
        },
        "replay_node": {"replay_dir": str(run.replay)},
        "learner_node": {
            "replay_dir": str(run.replay),
            "run_dir": str(run.learner),
            "private_key": str(keys / PRIVATE_KEY_NAME),
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


def check_signing_keys(stack: str, keys_dir: str | Path) -> None:
    """Fail before any node starts when a key file the stack's nodes read is missing or unusable.

    Keys are only ever made by `dreamer-policy keygen`: a stack that made its own when none was
    found would turn a typo in keys_dir into a new key pair whose bundles every robot refuses.
    Raises OSError or ValueError naming the file and the command that makes it.
    """
    keys_dir = Path(keys_dir)
    for name in STACK_KEYS[stack]:
        path = keys_dir / name
        if not path.is_file():
            make = (f"copy {PUBLIC_KEY_NAME} from the learner host, where `dreamer-policy keygen --out DIR` made "
                    "it (docs/real_robot_day.md)" if stack == "onboard"
                    else f"create the key pair with `dreamer-policy keygen --out {keys_dir}`")
            raise FileNotFoundError(f"{path} not found: {make}; or point --keys-dir / keys_dir at the folder "
                                    "holding it")
        (load_private_key if name == PRIVATE_KEY_NAME else load_public_key)(path)
