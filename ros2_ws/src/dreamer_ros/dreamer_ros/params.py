"""ROS parameters of the dreamer_ros nodes: how each is declared (description, range, live or
read-only) and applied while the node runs, and the ones every node shares (which robot config
to use, where data goes by default).

Every parameter is a `Param` in its node's table. `declare_parameters` declares a table with a
`ParameterDescriptor` each and refuses, at start, a value outside the range or the choices (the
node then exits with one line naming it). A parameter that can change while the node runs is
`live`: a `ros2 param set` is checked against the same range and choices and handed to the node's
`apply` function, which makes it take effect or refuses it with a reason. Every other parameter is
read-only, so a set is refused instead of reporting success without effect.
"""

from __future__ import annotations

import math
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import annotated_types
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

from dreamer_core.control.version_state import default_state_dir
from dreamer_core.robots.config import RobotConfig, load_robot_config, resolve_config_path

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Seeds feed numpy's default_rng and torch.manual_seed: non-negative, 32 bits.
SEED_RANGE = (0, 2**32 - 1)


# How an error message names each parameter type (ROS's bool, integer, double, string, string array).
TYPE_NAMES = {bool: "a bool (true or false)", int: "an integer", float: "a float", str: "a string",
              list: "a list of strings"}
# rclpy gives every node `use_sim_time`. These nodes time the control loop, sensor freshness and the
# episodes on the wall clock, and nothing publishes /clock: with sim time their clocks would stand still.
SIM_TIME_REFUSED = ("use_sim_time is not supported: the nodes run on the wall clock (nothing publishes /clock); "
                    "leave it false")


@dataclass(frozen=True)
class Param:
    """One node parameter. `range` is inclusive, None on a side for no bound (numbers only);
    `choices` lists the allowed strings; `live` parameters may change while the node runs."""

    default: bool | int | float | str | list[str]
    description: str
    range: tuple[float | None, float | None] | None = None
    choices: tuple[str, ...] = ()
    live: bool = False

    def __post_init__(self) -> None:
        if not self.description.strip():
            raise ValueError("every node parameter needs a description (docs/nodes.md lists them)")
        numeric = isinstance(self.default, int | float) and not isinstance(self.default, bool)
        if self.range is not None and not numeric:
            raise ValueError(f"a range needs a numeric default, not {self.default!r}")

    def allowed(self) -> str:
        """The allowed values, as an error message says them."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.range is None:
            return "any value of its type"
        low, high = self.range
        return f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"

    def problem(self, name: str, value) -> str | None:
        """Why `value` is not allowed for parameter `name` (its type, range or choices), or None.
        rclpy checks the type and the range of a set too; a params file is checked with this alone
        before any node starts."""
        kind = type(self.default)
        if kind is list:
            fits = isinstance(value, list) and all(isinstance(item, str) for item in value)
        elif kind is int:
            fits = isinstance(value, int) and not isinstance(value, bool)
        else:
            fits = isinstance(value, kind)
        if not fits:
            whole = isinstance(value, int) and not isinstance(value, bool)
            hint = f" (write {value}.0)" if kind is float and whole else ""
            return f"parameter {name}: {value!r} is not {TYPE_NAMES[kind]}{hint}; allowed {self.allowed()}"
        if self.range is not None:
            low, high = self.range
            if not ((low is None or value >= low) and (high is None or value <= high)):  # NaN fails both
                return f"parameter {name}: {value!r} is outside {self.allowed()}"
        if self.choices and value not in self.choices:
            return f"parameter {name}: {value!r} is not allowed; use {self.allowed()}"
        return None

    def descriptor(self, name: str) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(name=name, description=self.description, read_only=not self.live)
        if self.choices:
            descriptor.additional_constraints = self.allowed()
        if self.range is not None:
            low, high = self.range
            if isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(
                    from_value=INT64_MIN if low is None else int(low),
                    to_value=INT64_MAX if high is None else int(high))]
            else:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=-math.inf if low is None else float(low),
                    to_value=math.inf if high is None else float(high))]
        return descriptor


def declare_parameters(node, params: dict[str, Param],
                       apply: Callable[[dict[str, object]], None] | None = None) -> dict[str, object]:
    """Declare `params` on `node` and return their values (defaults, or what a params file or
    `--ros-args -p` gave). A given value outside the range or the choices raises ValueError naming
    the parameter and what is allowed. Live parameters set later are checked the same way, then
    passed to `apply(changes)`, which makes them take effect or raises ValueError (the set is
    refused with that reason). Can be called more than once per node, one table per call."""
    live = [name for name, param in params.items() if param.live]
    if live and apply is None:
        raise ValueError(f"live parameters {live} need an apply function")
    values = {}
    for name, param in params.items():
        try:
            value = node.declare_parameter(name, param.default, param.descriptor(name)).value
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:  # a params file or -p
            raise ValueError(f"parameter {name}: {exc}; allowed {param.allowed()}") from None
        if problem := param.problem(name, value):
            raise ValueError(problem)
        values[name] = value

    def on_set(parameters) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in params}
        for name, value in changes.items():
            if problem := params[name].problem(name, value):
                return SetParametersResult(successful=False, reason=problem)
        try:
            if changes and apply is not None:
                apply(changes)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values


def refuse_sim_time(node) -> str | None:
    """Refuse every later `use_sim_time: true` on `node` (before rclpy's own callback switches its
    clock: the newest callback runs first); why the node cannot run if it is already true, else None."""

    def on_set(parameters) -> SetParametersResult:
        if any(p.name == "use_sim_time" and p.value is True for p in parameters):
            return SetParametersResult(successful=False, reason=SIM_TIME_REFUSED)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return SIM_TIME_REFUSED if node.get_parameter("use_sim_time").value is True else None


def model_params(model, descriptions: dict[str, str], *, defaults: dict[str, object] | None = None,
                 live: tuple[str, ...] = (), ranges: dict[str, tuple] | None = None) -> dict[str, Param]:
    """Params mirroring the scalar fields of pydantic `model`, ranges and choices taken from its
    constraints (`Field(ge=..., le=...)`, `Literal[...]`); `defaults` and `ranges` override."""
    defaults, ranges = defaults or {}, ranges or {}
    params = {}
    for name, field in model.model_fields.items():
        default = defaults.get(name, field.default)
        if not isinstance(default, str | int | float | bool):
            continue
        low = high = None
        for constraint in field.metadata:
            if isinstance(constraint, annotated_types.Ge):
                low = constraint.ge
            elif isinstance(constraint, annotated_types.Le):
                high = constraint.le
        numeric = isinstance(default, int | float) and not isinstance(default, bool)
        found = (low, high) if numeric and (low is not None or high is not None) else None
        choices = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is typing.Literal else ()
        params[name] = Param(default, descriptions.get(name) or field.description or "",
                             range=ranges.get(name, found), choices=tuple(choices), live=name in live)
    return params


# Every node has it; the launch files and dreamer-stack set it from `robot:=` / `--robot`.
ROBOT_CONFIG = Param("a1_sim", "robot config: a name looked up in $DREAMER_ROBOT_CONFIGS and the installed "
                               "robot_configs/, or a YAML path")


def robot_configs_dirs() -> list[Path]:
    """Where robot configs are found when a node is given a name instead of a path."""
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory("dreamer_ros")) / "robot_configs")
    except (ImportError, LookupError):
        pass
    return dirs


def load_node_robot_config(node) -> RobotConfig:
    """Declare `robot_config` (a name like `a1_sim` or a YAML path) and load it."""
    return load_installed_robot_config(declare_parameters(node, {"robot_config": ROBOT_CONFIG})["robot_config"])


def _use_installed_configs() -> None:
    """Search dreamer_ros's share folder for config names unless DREAMER_ROBOT_CONFIGS says otherwise."""
    if not os.environ.get("DREAMER_ROBOT_CONFIGS"):
        extra = [str(d) for d in robot_configs_dirs() if d.is_dir()]
        if extra:
            os.environ["DREAMER_ROBOT_CONFIGS"] = os.pathsep.join(extra)


def installed_robot_config_path(value: str) -> Path:
    """The file robot config `value` (a YAML path, or a name) resolves to, as a node would find it."""
    _use_installed_configs()
    return resolve_config_path(value)


def load_installed_robot_config(value: str) -> RobotConfig:
    """Load robot config `value` (a YAML path, or a name also looked up in dreamer_ros's share folder)."""
    _use_installed_configs()
    return load_robot_config(value)


def default_data_dir(name: str) -> str:
    """Where a node keeps `name` (replay, learner) when no directory is given:
    ``$XDG_STATE_HOME/dreamer_ros/<name>`` (``~/.local/state/dreamer_ros/<name>``), per user and outside
    any checkout. The launch files and dreamer-stack always give one under their run directory."""
    return str(default_state_dir() / name)
