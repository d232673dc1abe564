"""The nodes' parameter tables and params files, without a ROS graph: descriptors, ranges, choices,
the learner's parameters taken from LearnerSettings, and the params-file checks made before any
node starts. Run by `colcon test` (this package's tests) and by the repository's `make test`.
Setting parameters over ROS: the repository's tests/integration/test_parameters.py."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from rcl_interfaces.msg import ParameterDescriptor

from dreamer_core.runners.learner_settings import LearnerSettings
from dreamer_ros import learner_node
from dreamer_ros.node_parameters import declared_parameters
from dreamer_ros.params import INT64_MAX, Param, model_params
from dreamer_ros.stacks import STACKS, ParamsFileError, check_params_file, stack_nodes

CONFIG = Path(__file__).resolve().parents[1] / "config"
TABLES = {node: declared_parameters(node) for node in STACKS["sim"]}


def test_a_parameter_needs_a_description_and_a_range_only_fits_numbers():
    with pytest.raises(ValueError, match="needs a description"):
        Param(1, " ")
    with pytest.raises(ValueError, match="range needs a numeric default"):
        Param("x", "a string", range=(0, 1))
    with pytest.raises(ValueError, match="range needs a numeric default"):
        Param(True, "a flag", range=(0, 1))


def test_descriptor_carries_description_range_and_read_only():
    fixed = Param(3, "an int", range=(1, None)).descriptor("n")
    assert isinstance(fixed, ParameterDescriptor) and fixed.read_only and fixed.description == "an int"
    assert (fixed.integer_range[0].from_value, fixed.integer_range[0].to_value) == (1, INT64_MAX)
    assert not fixed.floating_point_range
    live = Param(0.5, "a float", range=(None, 2.0), live=True).descriptor("x")
    assert not live.read_only and not live.integer_range
    assert live.floating_point_range[0].from_value == -math.inf and live.floating_point_range[0].to_value == 2.0
    mode = Param("a", "a mode", choices=("a", "b")).descriptor("mode")
    assert mode.additional_constraints == "one of a, b" and not mode.integer_range


def test_choices_are_checked_and_named():
    mode = Param("random", "mode", choices=("stand", "random"))
    assert mode.problem("initial_policy", "stand") is None
    assert mode.problem("initial_policy", "walk") == (
        "parameter initial_policy: 'walk' is not allowed; use one of stand, random")


def test_learner_parameters_take_ranges_and_choices_from_learner_settings():
    params = learner_node.PARAMETERS
    assert set(params) == set(LearnerSettings.model_fields)
    assert params["min_steps"].range == (1, None) and params["min_steps"].live
    assert params["nice"].range == (0, 19) and not params["nice"].live
    assert params["device"].choices == ("auto", "cpu", "cuda") and not params["device"].live
    assert params["private_key"].default == "" and params["replay_dir"].default.endswith("replay")
    assert params["offline_training"].default is False and params["offline_training"].live
    assert params["offline_idle_s"].range == (1.0, 3600.0) and params["offline_max_updates"].range == (0, None)
    assert params["offline_max_minutes"].range == (0.0, 1440.0) and params["offline_max_minutes"].live
    with pytest.raises(ValueError, match="needs a description"):
        model_params(LearnerSettings, {"seed": "seed"})  # every field needs one


@pytest.mark.parametrize("node", sorted(TABLES))
def test_every_parameter_is_described_and_every_number_has_a_range(node):
    for name, param in TABLES[node].items():
        assert param.description.strip(), f"{node}.{name}"
        numeric = isinstance(param.default, int | float) and not isinstance(param.default, bool)
        assert (param.range is not None) == numeric, f"{node}.{name}: a number needs a range"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_params_file_checks_name_the_file(tmp_path):
    with pytest.raises(ParamsFileError, match=f"params file {tmp_path / 'nope.yaml'} not found"):
        check_params_file(tmp_path / "nope.yaml")
    broken = write(tmp_path / "broken.yaml", "control_node: [unclosed\n")
    with pytest.raises(ParamsFileError, match=f"params file {broken} is not readable YAML"):
        check_params_file(broken)
    for text in ("just a string\n", "", "control_node:\n  explore: false\n",
                 "control_node:\n  ros__parameters: [explore]\n"):
        with pytest.raises(ParamsFileError, match=f"params file {tmp_path / 'bad.yaml'}"):
            check_params_file(write(tmp_path / "bad.yaml", text))


def test_params_file_may_not_set_what_the_stack_sets(tmp_path):
    text = "/robot1:\n  control_node:\n    ros__parameters:\n      explore: false\n      public_key: /tmp/k.pub\n"
    path = write(tmp_path / "p.yaml", text)
    assert check_params_file(path) == path.resolve()  # nested namespaces are fine
    with pytest.raises(ParamsFileError, match=r"sets `public_key` \(under `/robot1/control_node`\)"):
        check_params_file(path, set_by_stack={"public_key"})


@pytest.mark.parametrize(("section", "why"), [
    ("control_node:\n  ros__parameters:\n    initial_policy_amplitud: 0.5\n",
     r"`initial_policy_amplitud` is not a parameter of control_node \(did you mean `initial_policy_amplitude`\?\)"),
    ("control_node:\n  ros__parameters:\n    initial_policy_amplitude: 1\n",
     r"initial_policy_amplitude: 1 is not a float \(write 1.0\)"),
    ("control_node:\n  ros__parameters:\n    initial_policy_amplitude: 1.5\n",
     r"initial_policy_amplitude: 1.5 is outside \[0.0, 1.0\]"),
    ("control_node:\n  ros__parameters:\n    initial_policy: walk\n", r"'walk' is not allowed; use one of"),
    ("control_node:\n  ros__parameters:\n    explore: 'no'\n", r"explore: 'no' is not a bool"),
    ("replay_node:\n  ros__parameters:\n    seq_window: 2.5\n", r"seq_window: 2.5 is not an integer"),
    ("replay_node:\n  ros__parameters:\n    allowed_robot_ids: a1_sim\n", r"is not a list of strings"),
    ("contrl_node:\n  ros__parameters:\n    explore: false\n",
     r"`contrl_node` is not a dreamer_ros node \(did you mean `control_node`\?\)"),
    ("/**:\n  ros__parameters:\n    use_sim_time: true\n", r"use_sim_time is not supported"),
    ("/**:\n  ros__parameters:\n    sed: 3\n", r"`sed` is not a parameter of .*\(did you mean `seed`\?\)"),
])
def test_a_params_file_is_checked_against_what_the_nodes_declare(tmp_path, section, why):
    """Before any node starts: every name declared by its node, of its type, within its range or choices."""
    path = write(tmp_path / "mine.yaml", section)
    with pytest.raises(ParamsFileError, match=f"params file {path}, under `.*`: .*{why}|{why}"):
        stack_nodes("sim", robot="a1_sim", config_dir=CONFIG, run_dir=tmp_path / "run", params_file=path)


def test_a_params_file_may_say_what_rcl_reads_and_what_every_node_of_the_stack_declares(tmp_path):
    fine = write(tmp_path / "fine.yaml", "/**:\n  ros__parameters:\n    seed: 3\n    use_sim_time: false\n"
                                         "replay_node:\n  ros__parameters:\n    max_abs_obs: 1e4\n"
                                         "    allowed_robot_ids: [a1_sim, a1_b]\n")
    assert stack_nodes("sim", robot="a1_sim", config_dir=CONFIG, run_dir=tmp_path / "run", params_file=fine)
    # /** reaches the stack's nodes only: the onboard stack runs no learner to take its cadence.
    learner_only = write(tmp_path / "cadence.yaml", "/**:\n  ros__parameters:\n    export_every_updates: 20\n")
    assert stack_nodes("offboard", robot="a1_sim", config_dir=CONFIG, run_dir=tmp_path / "run",
                       params_file=learner_only)
    with pytest.raises(ParamsFileError, match="`export_every_updates` is not a parameter of control_node"):
        stack_nodes("onboard", robot="a1_sim", config_dir=CONFIG, run_dir=tmp_path / "run", params_file=learner_only)


def test_stack_nodes_put_the_params_file_between_defaults_and_the_stack_settings(tmp_path):
    mine = write(tmp_path / "mine.yaml", "/**:\n  ros__parameters:\n    seed: 7\n")
    for spec in stack_nodes("sim", robot="a1_sim", config_dir=tmp_path, run_dir=tmp_path / "run", params_file=mine):
        default, given, overrides = spec.parameters
        assert default == str(tmp_path / f"{spec.executable}.yaml") and given == str(mine)
        assert overrides["robot_config"] == "a1_sim"
    robot_side = write(tmp_path / "robot.yaml", "control_node:\n  ros__parameters:\n    state_dir: /var/lib/x\n")
    # A real robot keeps its policy versions where its params file says; the sim stack sets that itself.
    assert stack_nodes("onboard", robot="a1_sim", config_dir=tmp_path, run_dir=tmp_path, params_file=robot_side)
    with pytest.raises(ParamsFileError, match="sets `state_dir`"):
        stack_nodes("sim", robot="a1_sim", config_dir=tmp_path, run_dir=tmp_path, params_file=robot_side)


def test_a_sessions_run_has_the_learner_train_offline_and_a_params_file_may_not_say_otherwise(tmp_path):
    def learner(**kw):
        specs = stack_nodes("sim", robot="a1_sim", config_dir=tmp_path, run_dir=tmp_path / "run", **kw)
        return next(s for s in specs if s.name == "learner_node").parameters[-1]

    assert "offline_training" not in learner()  # the installed default (off), or a params file's
    assert learner(offline_training=True)["offline_training"] is True
    mine = write(tmp_path / "mine.yaml", "learner_node:\n  ros__parameters:\n    offline_training: false\n")
    assert learner(params_file=mine)
    with pytest.raises(ParamsFileError, match="sets `offline_training`"):
        learner(params_file=mine, offline_training=True)


@pytest.mark.parametrize("file_name", ["example_params.yaml", "demo_params.yaml"])
def test_the_shipped_params_files_are_usable_by_every_stack_and_their_values_are_allowed(file_name):
    shipped = CONFIG / file_name
    for stack in ("sim", "onboard", "offboard"):
        assert stack_nodes(stack, robot="a1_sim", config_dir=shipped.parent, run_dir="/tmp/x", params_file=shipped)
    for node, section in yaml.safe_load(shipped.read_text()).items():
        for name, value in section["ros__parameters"].items():
            param = TABLES[node][name]
            assert type(value) is type(param.default) and param.problem(name, value) is None, f"{node}.{name}"
            if param.range is not None:
                low, high = param.range
                assert (low is None or value >= low) and (high is None or value <= high), f"{node}.{name}"
