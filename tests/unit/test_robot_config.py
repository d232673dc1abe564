"""Robot config schema: the shipped configs load, and each kind of error names file and key path.

Also covers the sim/real-shared observation builder and action mapper.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from dreamer_core.robots import ActionMapper, ConfigError, ObservationBuilder, RobotSignals, load_robot_config
from dreamer_core.robots.config import config_dirs, parse_robot_config
from dreamer_core.robots.observation import OBSERVATION_TERMS, ObservationTermKind

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "robot_configs"


# A two-joint trot fragment (docs/robot_config.md#action): enough for the schema checks.
TROT = {"frequency_hz": 2.0, "joints": [{"name": "FR_upper_joint", "amplitude": 0.1},
                                        {"name": "FR_lower_joint", "amplitude": -0.2, "phase": 0.75,
                                         "rectified": True}]}


def walking(data: dict, **gait) -> None:
    """Make ``data`` a base-gait config (TROT with ``gait``'s keys changed) that observes the phase."""
    data["action"].update(kind="base_gait", gait={**TROT, **gait})
    data["observation"].append({"name": "gait_phase"})


def a1_data() -> dict:
    return yaml.safe_load((REPO_CONFIGS / "a1_sim.yaml").read_text())


def load_modified(tmp_path: Path, change) -> str:
    """Write a1_sim.yaml modified by ``change`` to a real file and return the load error message."""
    data = a1_data()
    change(data)
    path = tmp_path / "a1_sim.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_robot_config(path)
    return str(info.value)


def test_shipped_configs_load_by_name():
    sim = load_robot_config("a1_sim")
    assert sim.joint_names[0] == "FR_hip_joint" and sim.act_dim == 12
    # 12 joint_pos + 12 joint_vel + 3 gyro + 3 gravity + 4 contacts + 12 prev_action
    assert sim.obs_dim == 46
    assert sim.substeps == 10 and sim.episode_steps == 1000
    spec = sim.policy_spec()
    assert spec.obs_dim == sim.obs_dim and spec.act_dim == 12
    assert spec.action_joints == tuple(sim.joint_names)
    real = load_robot_config(REPO_CONFIGS / "real_robot_template.yaml")
    assert real.sim is None and real.topics.command_type == "std_msgs/Float64MultiArray"
    assert real.policy_spec().hash() != spec.hash()
    trot = load_robot_config("a1_sim_trot")
    # a1_sim's terms plus the gait phase (sin, cos); 20 Hz over the same 500 Hz PD, 20 s episodes.
    assert trot.action.kind == "base_gait" and trot.obs_dim == 48
    assert trot.substeps == 25 and trot.episode_steps == 400
    assert trot.policy_spec().hash() != spec.hash()


def test_name_lookup_honours_env_var(tmp_path, monkeypatch):
    data = a1_data()
    data["robot_id"] = "custom_bot"
    (tmp_path / "custom_bot.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("DREAMER_ROBOT_CONFIGS", str(tmp_path))
    assert config_dirs()[0] == tmp_path
    assert load_robot_config("custom_bot").robot_id == "custom_bot"
    with pytest.raises(ConfigError, match="not found"):
        load_robot_config("no_such_robot")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["joints"][3].update(kp=0.0), "a1_sim.yaml: joints.3.kp: Input should be greater than 0"),
        (lambda d: d["joints"][2].update(kd=-1.0), "a1_sim.yaml: joints.2.kd:"),
        (lambda d: d["joints"][1].update(default=5.0),
         "a1_sim.yaml: joints.1: default (5.0) must lie within"),
        (lambda d: d["joints"][0].update(lower=1.0), "a1_sim.yaml: joints.0: lower (1.0) must be < upper"),
        (lambda d: d["joints"][4].update(name="FR_hip_joint"), "joints.4.name: duplicate joint name"),
        (lambda d: d["joints"][0].update(stiffness=3), "joints.0.stiffness: unknown key"),
        (lambda d: d.update(colour="red"), "a1_sim.yaml: colour: unknown key"),
        (lambda d: d.pop("control_rate_hz"), "a1_sim.yaml: control_rate_hz: Field required"),
        (lambda d: d.update(low_level_rate_hz=475), "low_level_rate_hz: must be an integer multiple"),
        (lambda d: d["action"].update(scale=[0.1, 0.2]),
         "action.scale: has 2 values but there are 12 joints"),
        (lambda d: d["action"].update(lowpass_alpha=0.0), "action.lowpass_alpha:"),
        (lambda d: d["action"].update(clip=0.5), "a1_sim.yaml: action.clip: must be 1 (got 0.5)"),
        (lambda d: d["observation"].append({"name": "joint_pos"}),
         "observation.6.name: term 'joint_pos' appears"),
        (lambda d: d["observation"].append({"name": "joint_torque"}), "observation.6.name: Input should be"),
        (lambda d: d["topics"].update(foot_contacts=None),
         "observation.4.name: needs the foot_contacts signal, but topics.foot_contacts is not configured"),
        (lambda d: d["topics"].update(odometry=None),
         "reward.terms.4.kind: needs the base_lin_vel signal, but topics.odometry is not configured"),
        (lambda d: d["reward"]["terms"][1].update(gate=["forward_velocity"]),
         "reward.terms.1.gate: 'forward_velocity' is not an earlier reward term"),
        (lambda d: d["reward"]["terms"][2]["joints"].__setitem__(1, "FL_thigh"),
         "reward.terms.2.joints.1: unknown joint 'FL_thigh'"),
        (lambda d: d["reward"]["terms"][2].update(target=[0.9]),
         "reward.terms.2.target: has 1 values for 4 joints"),
        (lambda d: d["reward"]["terms"][0].update(kind="happiness"), "reward.terms.0.kind: Input should be"),
        (lambda d: d["episode"].update(max_steps=100),
         "episode: give exactly one of max_steps or max_seconds"),
        (lambda d: d["safety"].update(max_tilt_rad=4.0),
         "safety.max_tilt_rad: Input should be less than or equal"),
        (lambda d: d["topics"].update(command_type="trajectory_msgs/JointTrajectory"),
         "topics.command_type:"),
        (lambda d: d["sim"]["randomization"].update(friction=[1.2, 0.6]),
         "sim.randomization: friction: low (1.2) must be <= high (0.6)"),
        (lambda d: d["sim"].update(foot_bodies=["FR_toe"]), "sim.foot_bodies: has 1 bodies for 4 feet"),
        (lambda d: d.update(robot_id="a1 sim"), "a1_sim.yaml: robot_id: String should match pattern"),
        (lambda d: d["action"].update(kind="base_gait"), "action: gait: give it exactly when kind is base_gait"),
        (lambda d: d["action"].update(gait=TROT), "action: gait: give it exactly when kind is base_gait"),
        (lambda d: d["action"].update(kind="base_gait", gait=TROT),
         "observation: action.kind base_gait needs the gait_phase term"),
        (lambda d: d["observation"].append({"name": "gait_phase"}),
         "observation: the gait_phase term needs action.kind base_gait"),
        (lambda d: walking(d, frequency_hz=40.0), "action.gait.frequency_hz: 40.0 Hz is above half the control rate"),
        (lambda d: walking(d, joints=[{"name": "FR_knee", "amplitude": 0.1}]),
         "action.gait.joints.0.name: unknown joint 'FR_knee'"),
        (lambda d: walking(d, joints=[{"name": "FR_hip_joint", "amplitude": 0.1}] * 2),
         "action.gait.joints.1.name: joint 'FR_hip_joint' appears twice"),
        (lambda d: walking(d, joints=[{"name": "FR_hip_joint", "amplitude": 0.1, "phase": 1.0}]),
         "action.gait.joints.0.phase: Input should be less than 1"),
        (lambda d: d["reward"]["terms"][1].update(gate_threshold=float("nan")), "reward.terms.1.gate_threshold:"),
    ],
)
def test_each_config_error_names_file_and_key(tmp_path, change, expected):
    assert expected in load_modified(tmp_path, change)


def test_several_errors_are_all_reported(tmp_path):
    def two_problems(d):
        d["joints"][0]["kp"] = -1
        d["joints"][5]["kd"] = "soft"

    message = load_modified(tmp_path, two_problems)
    assert "joints.0.kp" in message and "joints.5.kd" in message

    def two_cross_key_problems(d):
        d["low_level_rate_hz"] = 475
        d["topics"]["odometry"] = None

    lines = load_modified(tmp_path, two_cross_key_problems).splitlines()
    assert lines[0].startswith("a1_sim.yaml: low_level_rate_hz: must be an integer multiple")
    assert lines[1].startswith("a1_sim.yaml: reward.terms.4.kind: needs the base_lin_vel signal")


def test_unreadable_files_are_refused_clearly(tmp_path):
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("joints: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_robot_config(bad_yaml)
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: top level must be a mapping"):
        load_robot_config(not_mapping)
    with pytest.raises(ConfigError, match=r"missing\.yaml: robot config file not found"):
        load_robot_config(tmp_path / "missing.yaml")


def level_signals(config, **overrides) -> RobotSignals:
    values = dict(
        joint_pos=np.array([j.default for j in config.joints]),
        joint_vel=np.zeros(config.act_dim),
        base_quat=np.array([1.0, 0.0, 0.0, 0.0]),
        base_ang_vel=np.zeros(3),
        base_lin_vel=np.zeros(3),
        foot_contacts=np.ones(4),
    )
    values.update(overrides)
    return RobotSignals(**values)


def test_observation_follows_config_order_and_scales():
    data = a1_data()
    data["observation"] = [
        {"name": "base_ang_vel", "scale": 2.0},
        {"name": "joint_vel", "scale": 0.5},
        {"name": "roll_pitch"},
        {"name": "joint_pos"},
        {"name": "base_lin_vel", "scale": -1.0},
        {"name": "prev_action"},
    ]
    config = parse_robot_config(data)
    builder = ObservationBuilder(config)
    assert [(n, s.stop - s.start) for n, s in builder.layout()] == [
        ("base_ang_vel", 3), ("joint_vel", 12), ("roll_pitch", 2), ("joint_pos", 12), ("base_lin_vel", 3),
        ("prev_action", 12),
    ]
    joint_vel = np.arange(12.0)
    joint_pos = np.array([j.default for j in config.joints]) + 0.01 * np.arange(12)
    # 0.3 rad roll about x: quaternion (cos 0.15, sin 0.15, 0, 0).
    quat = np.array([np.cos(0.15), np.sin(0.15), 0.0, 0.0])
    signals = level_signals(config, joint_vel=joint_vel, joint_pos=joint_pos, base_quat=quat,
                            base_ang_vel=np.array([1.0, 2.0, 3.0]), base_lin_vel=np.array([0.5, 0.0, 0.0]))
    prev = np.linspace(-1, 1, 12)
    obs = builder.build(signals, prev)
    assert obs.dtype == np.float32 and obs.shape == (config.obs_dim,)
    parts = {name: obs[where] for name, where in builder.layout()}
    np.testing.assert_allclose(parts["base_ang_vel"], [2.0, 4.0, 6.0])
    np.testing.assert_allclose(parts["joint_vel"], 0.5 * joint_vel)
    np.testing.assert_allclose(parts["roll_pitch"], [0.3, 0.0], atol=1e-6)
    np.testing.assert_allclose(parts["joint_pos"], 0.01 * np.arange(12), atol=1e-6)
    np.testing.assert_allclose(parts["base_lin_vel"], [-0.5, 0.0, 0.0])
    np.testing.assert_allclose(parts["prev_action"], prev, rtol=1e-6)


def test_projected_gravity_and_contacts_terms():
    config = load_robot_config("a1_sim")
    builder = ObservationBuilder(config)
    # (cos 45deg, 0, sin 45deg, 0): rotated +90 degrees about y (nose down).
    quat = np.array([np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0])
    signals = level_signals(config, base_quat=quat, foot_contacts=np.array([1.0, 0.0, 1.0, 0.0]))
    parts = {n: builder.build(signals, np.zeros(12))[s] for n, s in builder.layout()}
    # Rotating +90 deg about y maps body x to world -z, so world -z is body +x.
    np.testing.assert_allclose(parts["projected_gravity"], [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(parts["foot_contacts"], [1.0, 0.0, 1.0, 0.0])
    level = {n: builder.build(level_signals(config), np.zeros(12))[s] for n, s in builder.layout()}
    np.testing.assert_allclose(level["projected_gravity"], [0.0, 0.0, -1.0])


def test_observation_rejects_bad_input_naming_the_term():
    config = load_robot_config("a1_sim")
    builder = ObservationBuilder(config)
    with pytest.raises(ValueError, match="'joint_vel': expected 12 values"):
        builder.build(level_signals(config, joint_vel=np.zeros(11)), np.zeros(12))
    with pytest.raises(ValueError, match="base_ang_vel"):
        builder.build(level_signals(config, base_ang_vel=np.array([0.0, np.nan, 0.0])), np.zeros(12))
    with pytest.raises(ValueError, match="'foot_contacts': the signal is missing"):
        builder.build(level_signals(config, foot_contacts=None), np.zeros(12))
    with pytest.raises(ValueError, match="'prev_action': expected 12 values"):
        builder.build(level_signals(config), np.zeros(3))


def test_action_mapper_scales_clips_filters_and_respects_limits():
    data = a1_data()
    data["action"] = {"scale": 0.5, "clip": 1.0, "lowpass_alpha": 0.5}
    config = parse_robot_config(data)
    mapper = ActionMapper(config)
    default = np.array([j.default for j in config.joints])
    mapper.reset()
    action = np.zeros(12)
    action[1] = 0.4  # FR thigh: +0.2 rad target, half of it after one filter step
    action[0] = 5.0  # clipped to 1 -> +0.5 rad, half of it after one filter step
    targets = mapper(action)
    assert targets[1] == pytest.approx(default[1] + 0.1)
    assert targets[0] == pytest.approx(default[0] + 0.25)
    targets = mapper(action)
    assert targets[1] == pytest.approx(default[1] + 0.15)
    # Knee default -1.8, upper -0.92, margin 0.05: a full +1 action (+0.5) stays inside, -1 too.
    unfiltered = copy.deepcopy(data)
    unfiltered["action"] = {"scale": 2.0}
    mapper = ActionMapper(parse_robot_config(unfiltered))
    high = mapper(np.ones(12))
    assert high[2] == pytest.approx(-0.92 - 0.05) and high[0] == pytest.approx(0.80 - 0.05)
    low = mapper(-np.ones(12))
    assert low[2] == pytest.approx(-2.69 + 0.05)
    with pytest.raises(ValueError, match="action: non-finite"):
        mapper(np.full(12, np.inf))
    with pytest.raises(ValueError, match="expected 12 values"):
        mapper(np.zeros(4))


def test_a_new_observation_term_is_one_registry_entry(monkeypatch):
    # The one entry: a name, a width for the robot, and a getter from the tick's signals.
    monkeypatch.setitem(OBSERVATION_TERMS, "base_ang_speed", ObservationTermKind(
        width=lambda config: 1,
        read=lambda signals, prev_action, default, phase: [np.linalg.norm(signals.base_ang_vel)]))
    data = a1_data()
    data["observation"].insert(2, {"name": "base_ang_speed", "scale": 0.5})
    config = parse_robot_config(data)  # the config accepts the new name
    assert config.obs_dim == 47
    spec = config.policy_spec()
    assert spec.observation[2] == ("base_ang_speed", 1) and spec.obs_dim == 47
    builder = ObservationBuilder(config)
    parts = {n: builder.build(level_signals(config, base_ang_vel=np.array([3.0, 0.0, 4.0])), np.zeros(12))[s]
             for n, s in builder.layout()}
    np.testing.assert_allclose(parts["base_ang_speed"], [2.5])
    np.testing.assert_allclose(parts["base_ang_vel"], [0.75, 0.0, 1.0])  # a1_sim scales it by 0.25
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=r"observation\.2\.name: Input should be 'joint_pos'"):
        parse_robot_config(data)  # without the entry the name is unknown again
