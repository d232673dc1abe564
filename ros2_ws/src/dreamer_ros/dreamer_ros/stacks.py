"""The three stacks (sim, onboard, offboard) as data.

Both the launch_ros files in launch/ and the `dreamer-stack` runner build their
processes from `stack_nodes`, so the two ways of starting the stack cannot drift.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dreamer_core.config import DEFAULT_PRESET
from dreamer_core.deploy.keys import (
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    key_fingerprint,
    load_private_key,
    load_public_key,
)
from dreamer_core.report.run_layout import RunLayout
from dreamer_ros.node_parameters import declared_parameters
from dreamer_ros.params import SIM_TIME_REFUSED, Param

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
                allow_unsigned: bool = False, preset: str = DEFAULT_PRESET,
                params_file: str | Path | None = None, offline_training: bool = False) -> list[NodeSpec]:
    """The nodes of `stack` for `robot`, with parameter files from `config_dir`.

    `run_dir` holds what the run produces (replay/, learner/ with checkpoints,
    bundles and TensorBoard events); `keys_dir` the Ed25519 key pair
    (policy_signing.key on the learner host, policy_signing.pub on the robot).
    `params_file`, a ROS params file of the user's, goes to every node after the
    package's file: its values win over the defaults, but not over the parameters the
    stack sets from its own arguments (ParamsFileError when it tries, or is unusable).
    `offline_training` (a run of several sessions) has the learner train on the stored replay
    while the robot is off (its `offline_training` parameter, set by the stack).
    """
    if stack not in STACKS:
        raise ValueError(f"unknown stack {stack!r}; choose one of {sorted(STACKS)}")
    config_dir, run = Path(config_dir), RunLayout(Path(run_dir))
    namespace = absolute_namespace(namespace)
    keys = Path(keys_dir) if keys_dir else run.root / "keys"
    common = {"robot_config": robot}
    overrides = {
        "sim_robot": {"travel_log": str(run.travel_log)},  # forward travel per episode, for the report
        "control_node": {
            "public_key": str(keys / PUBLIC_KEY_NAME),
            "allow_unsigned": allow_unsigned,
        } | ({
            # In simulation the control node stands the robot up again after each episode, and the
            # policy versions belong to this run (each run's learner starts at v1); a real robot keeps
            # them in its state_dir (per-user default, or a params file's).
            "reset_service": f"{namespace}/sim_robot/reset",
            "state_dir": str(run.control_state),
        } if stack == "sim" else {}),
        "replay_node": {"replay_dir": str(run.replay)},
        "learner_node": {
            "replay_dir": str(run.replay),
            "run_dir": str(run.learner),
            "private_key": str(keys / PRIVATE_KEY_NAME),
            "preset": preset,
        } | ({"offline_training": True} if offline_training else {}),
    }
    specs = []
    for executable in STACKS[stack]:
        params = [str(config_dir / f"{executable}.yaml"), {**common, **overrides[executable]}]
        specs.append(NodeSpec(executable=executable, name=executable, namespace=namespace, parameters=params))
    if params_file is not None:
        path = check_params_file(params_file, set_by_stack={key for spec in specs for key in spec.parameters[1]},
                                 nodes=STACKS[stack])
        for spec in specs:
            spec.parameters.insert(1, str(path))
    return specs


class ParamsFileError(ValueError):
    """A params file that cannot be used: names the file and what is wrong. No node was started."""


def check_params_file(path: str | Path, set_by_stack: Collection[str] = (),
                      nodes: Collection[str] = STACKS["sim"]) -> Path:
    """The absolute path of ROS params file `path` once it is known to be usable: a YAML mapping of
    node names (`/**`, `control_node`, `/robot1/control_node`, or nested namespaces) to
    `ros__parameters` mappings, each parameter one that the node declares, of its type and within its
    range or choices, none in `set_by_stack`. `/**` sections apply to the stack's `nodes`. rcl or the
    nodes would otherwise refuse it after they started, or ignore a misspelt name."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ParamsFileError(f"params file {path} not found")
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ParamsFileError(f"params file {path} is not readable YAML: {exc}") from None
    if not isinstance(content, dict) or not content:
        raise ParamsFileError(f"params file {path} must map node names to `ros__parameters:` "
                              "(docs/nodes.md#params-files)")
    for where, parameters in _parameter_sections(path, content, ""):
        node = where.rsplit("/", 1)[-1]
        known = STACKS["sim"]  # every dreamer_ros node
        if node not in ("*", "**") and node not in known:
            raise ParamsFileError(f"params file {path}: `{where}` is not a dreamer_ros node"
                                  f"{_did_you_mean(node, known)}; the nodes are {', '.join(known)}, or /** for all")
        tables = {n: declared_parameters(n) for n in (nodes if node in ("*", "**") else (node,))}
        for name, value in parameters.items():
            if name in set_by_stack:
                raise ParamsFileError(f"params file {path} sets `{name}` (under `{where}`), which the stack sets "
                                      "from its own arguments: remove it from the file (docs/nodes.md#params-files)")
            if problem := _parameter_problem(name, value, tables):
                raise ParamsFileError(f"params file {path}, under `{where}`: {problem} (docs/nodes.md)")
    return path


def _parameter_problem(name: str, value, tables: dict[str, dict[str, Param]]) -> str | None:
    """Why parameter `name` = `value` cannot go to the nodes of `tables`, or None."""
    if name == "use_sim_time":  # rclpy declares it on every node
        return None if value is False else SIM_TIME_REFUSED
    owners = [table[name] for table in tables.values() if name in table]
    if not owners:
        known = sorted({n for table in tables.values() for n in table})
        return f"`{name}` is not a parameter of {', '.join(tables)}{_did_you_mean(name, known)}"
    for param in owners:
        if isinstance(param.default, float) and isinstance(value, str):
            with contextlib.suppress(ValueError):  # rcl reads 1e4 as a number where PyYAML (YAML 1.1) sees a string
                value = float(value)
        if problem := param.problem(name, value):
            return problem
    return None


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _parameter_sections(path: Path, content: dict, prefix: str):
    """(node name, ros__parameters mapping) of each node section of a params file, at any depth."""
    for key, value in content.items():
        where = f"{prefix}/{key}" if prefix else str(key)
        if not isinstance(value, dict):
            raise ParamsFileError(f"params file {path}: `{where}` must hold `ros__parameters:` with a mapping of "
                                  "parameter names to values (docs/nodes.md#params-files)")
        if "ros__parameters" in value:
            if not isinstance(value["ros__parameters"], dict):
                raise ParamsFileError(f"params file {path}: `{where}/ros__parameters` must be a mapping of "
                                      "parameter names to values")
            yield where, value["ros__parameters"]
        else:
            yield from _parameter_sections(path, value, where)


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
    if set(STACK_KEYS[stack]) == {PRIVATE_KEY_NAME, PUBLIC_KEY_NAME}:
        # The learner signs with one, the robot checks with the other: from two pairs, it would refuse
        # every bundle, found only at the first promotion.
        signing = key_fingerprint(load_private_key(keys_dir / PRIVATE_KEY_NAME).public_key())
        accepted = key_fingerprint(load_public_key(keys_dir / PUBLIC_KEY_NAME))
        if signing != accepted:
            raise ValueError(f"{keys_dir}: {PRIVATE_KEY_NAME} (key {signing}) and {PUBLIC_KEY_NAME} (key {accepted}) "
                             "are not one pair: the robot would refuse every bundle; copy the .pub made with that "
                             "private key, or make a new pair with `dreamer-policy keygen --out DIR --force`")
