"""Robot config schema: one YAML per robot, validated on load.

A robot config is data: joints, observation and action layout, reward, safety
limits, topics and (optionally) the simulator. Every node and the simulator read
the same file, so the policy's observation means the same thing everywhere.
Errors name the file and the key path (``a1_sim.yaml: joints.3.kp: ...``).
Reference: docs/robot_config.md.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from dreamer_core.robots.observation import OBSERVATION_TERMS
from dreamer_core.robots.reward import REWARD_KINDS
from dreamer_core.spec import PolicySpec

# Signals that only exist when a topic provides them: RobotSignals field -> topics field.
OPTIONAL_SIGNAL_TOPIC = {"base_lin_vel": "odometry", "foot_contacts": "foot_contacts"}

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class ConfigError(ValueError):
    """A robot config that cannot be used; the message names the file and key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JointConfig(_Strict):
    """One actuated joint: default (standing) pose, position limits and PD gains."""

    name: str = Field(min_length=1)
    default: FiniteFloat
    lower: FiniteFloat
    upper: FiniteFloat
    kp: PositiveFloat
    kd: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    effort_limit: PositiveFloat | None = None  # N·m; None: take the model's limit (sim) / driver's (real)

    @model_validator(mode="after")
    def _limits(self) -> JointConfig:
        if not self.lower < self.upper:
            raise ValueError(f"lower ({self.lower}) must be < upper ({self.upper})")
        if not self.lower <= self.default <= self.upper:
            raise ValueError(
                f"default ({self.default}) must lie within [lower, upper] = [{self.lower}, {self.upper}]"
            )
        return self


def _registered(value: str, registry: dict) -> str:
    """``value`` if it names a registry entry, else the error a Literal of the entries would give."""
    if value not in registry:
        names = [repr(name) for name in registry]
        expected = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
    return value


class ObservationTerm(_Strict):
    """One observation term (a name in dreamer_core.robots.observation.OBSERVATION_TERMS),
    its values multiplied by ``scale``."""

    name: str
    scale: FiniteFloat = 1.0

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return _registered(value, OBSERVATION_TERMS)


class GaitJoint(_Strict):
    """One joint's part of the open-loop base gait: ``amplitude · sin(2π(f·t + phase))`` rad, or only
    the sine's positive half (``rectified``: a lift that returns to the default pose)."""

    name: str
    amplitude: FiniteFloat  # rad; negative flips the direction
    phase: Annotated[float, Field(ge=0, lt=1)] = 0.0  # fraction of a cycle
    rectified: bool = False


class GaitConfig(_Strict):
    """An open-loop periodic gait the policy's actions are residuals around (``action.kind: base_gait``)."""

    frequency_hz: PositiveFloat
    joints: list[GaitJoint] = Field(min_length=1)


class ActionConfig(_Strict):
    """Policy action in [-1, 1]^J -> joint position targets around the default pose.

    ``clip`` must be 1: the actor's action box is [-1, 1] (the exported tick clamps to it and
    imagination clips to it), so another clip would either never bind or make the robot execute
    other actions than the model was trained on; ``scale`` sets the range in radians.
    ``kind: base_gait`` adds the open-loop ``gait`` to the default pose, so that the policy's
    action is a residual around it (and action 0 walks the gait).
    """

    kind: Literal["joint_position_offset", "base_gait"] = "joint_position_offset"
    scale: PositiveFloat | list[PositiveFloat] = 0.25  # rad per unit action (one value or one per joint)
    clip: float = 1.0
    lowpass_alpha: Annotated[float, Field(gt=0, le=1)] = 1.0  # 1.0: no filter
    gait: GaitConfig | None = None  # kind base_gait only

    @model_validator(mode="after")
    def _gait_with_its_kind(self) -> ActionConfig:
        if (self.kind == "base_gait") != (self.gait is not None):
            raise ValueError("gait: give it exactly when kind is base_gait (the open-loop gait the actions "
                             "are residuals around)")
        return self

    @field_validator("clip")
    @classmethod
    def _unit_box(cls, value: float) -> float:
        if value != 1.0:
            raise ValueError(f"must be 1 (got {value}): policies act in [-1, 1]; "
                             "set action.scale to change how far a unit action moves a joint")
        return value


class RewardTerm(_Strict):
    """One weighted reward term.

    ``gate`` lists earlier terms whose value, clipped to [0, 1], multiplies this one.
    """

    name: str = Field(min_length=1)
    kind: str  # a name in dreamer_core.robots.reward.REWARD_KINDS
    weight: FiniteFloat = 1.0
    gate: list[str] = Field(default_factory=list)
    joints: list[str] | None = None  # joint_posture: which joints
    target: list[FiniteFloat] | None = None  # joint_posture: target angles (default: default pose)
    # joint_posture: mean abs error (rad) at which the term reaches 0; heading: the yaw (rad) since
    # the episode began at which it does
    tolerance: PositiveFloat = 1.0
    # None: the gate terms' values (clipped to [0, 1]) multiply this one; a number: each gate term is a
    # threshold instead, 1 when its value reaches it and 0 below (the DayDreamer reward's structure).
    gate_threshold: Annotated[float, Field(allow_inf_nan=False)] | None = None
    max_velocity: PositiveFloat = 1.0  # forward_velocity: speed (m/s) that earns the full term

    @field_validator("kind")
    @classmethod
    def _known(cls, value: str) -> str:
        return _registered(value, REWARD_KINDS)


class RewardConfig(_Strict):
    """The reward: a list of terms, summed."""

    terms: list[RewardTerm] = Field(min_length=1)


class EpisodeConfig(_Strict):
    """Episode length: give exactly one of max_steps or max_seconds."""

    max_steps: Annotated[int, Field(gt=0)] | None = None
    max_seconds: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one(self) -> EpisodeConfig:
        if (self.max_steps is None) == (self.max_seconds is None):
            raise ValueError("give exactly one of max_steps or max_seconds")
        return self


class SensorBoundsConfig(_Strict):
    """Plausibility bounds on every sensor reading; a reading outside them holds the robot.

    Each bound has its own fault name (docs/nodes.md): a driver that publishes
    garbage must never reach the policy, and the operator must see which field it was.
    """

    quaternion_norm_tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.1  # |norm - 1| of the IMU orientation
    joint_position_tolerance_rad: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.2  # beyond [lower, upper]
    max_joint_velocity: PositiveFloat = 40.0  # rad/s, any joint
    max_joint_effort: PositiveFloat | None = None  # N·m, any joint; None: efforts are only checked for finiteness
    max_angular_velocity: PositiveFloat = 30.0  # rad/s, IMU gyro, any axis
    max_linear_velocity: PositiveFloat = 10.0  # m/s, odometry twist, any axis
    max_stamp_lead_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.25  # header stamp ahead of the clock


class SafetyConfig(_Strict):
    """Limits the control node enforces on the robot (and the simulator uses for episode ends)."""

    max_tilt_rad: Annotated[float, Field(gt=0, le=math.pi)] = 1.0
    joint_limit_margin_rad: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.05
    stale_sensor_periods: Annotated[int, Field(ge=1)] = 3
    max_action_rate: PositiveFloat = 10.0  # rad/s change of any joint target
    soft_start_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    sensor_bounds: SensorBoundsConfig = Field(default_factory=SensorBoundsConfig)


# Keys of the trust section that were replaced: what replaced them and why (a clear error, not "unknown key").
_ON_SKILL = "thresholds are on skill and ensemble disagreement now"
RETIRED_TRUST_KEYS = {
    "max_reward_error": ("min_skill", _ON_SKILL),
    "max_continue_error": ("min_skill", _ON_SKILL),
    "min_horizon_retention": ("max_disagreement_ratio", _ON_SKILL),
    "min_held_out_episodes": ("min_held_out_blocks", "data is held out in blocks of held_out_block_steps steps now"),
}


def _refuse_retired(data, retired_keys: dict[str, tuple[str, str]], section: str, doc: str):
    """``data`` unchanged, or a ValueError naming each retired key of ``section`` with its replacement."""
    if isinstance(data, dict):
        retired = [key for key in retired_keys if key in data]
        if retired:
            replaced = "; ".join(f"{key} -> {retired_keys[key][0]}: {retired_keys[key][1]}" for key in retired)
            raise ValueError(f"{', '.join(retired)}: no longer a {section} key ({replaced}; see {doc})")
    return data


class TrustConfig(_Strict):
    """Model-trust gate (docs/model_trust.md): a candidate policy is promoted only when every check
    passes, each measured on held-out data the model never trained on."""

    open_loop_steps: Annotated[int, Field(ge=1)] = 15  # K: skill is measured for k = 1..K prior steps
    # Share of every policy version's data never trained on, chosen per block by a hash of its identity.
    held_out_fraction: Annotated[float, Field(gt=0, le=0.5)] = 0.2
    # Blocks: an episode is cut into pieces of this many steps (250 = 5 s at 50 Hz), each held out or not;
    # None: whole episodes (long episodes then make few, all-or-nothing held-out units).
    held_out_block_steps: Annotated[int, Field(ge=1)] | None = 250
    # Fewer held-out blocks than this: the gate refuses (too little to judge the model on).
    min_held_out_blocks: Annotated[int, Field(ge=1)] = 4
    # Check windows are not drawn: every window of a part at this stride (16 = open_loop_steps + 1: each
    # row is an anchor of one window), so the same data always gives the same measurement.
    window_stride: Annotated[int, Field(ge=1)] = 16
    check_sequences: Annotated[int, Field(ge=1)] = 64  # at most this many windows per part and check: the newest
    # Skill = 1 - model error / error of the better baseline (batch mean, persistence); the reward and
    # continue skill at the candidate's imagination horizon must reach this.
    min_skill: Annotated[float, Field(lt=1, allow_inf_nan=False)] = -0.7
    # Paired check against the model whose policy runs (the last promoted one the robot did not reject): on
    # the same windows, the bootstrap interval (at skill_confidence) of the mean skill difference
    # (candidate - running) must reach -max_skill_drop, for the reward and the continue skill.
    max_skill_drop: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.1
    skill_confidence: Annotated[float, Field(gt=0, lt=1)] = 0.9
    # Ensemble disagreement along the candidate's imagination / on held-out real data must stay below this.
    max_disagreement_ratio: Annotated[float, Field(gt=1, allow_inf_nan=False)] = 1.25
    # Imagination horizon: "fixed" keeps the preset's; "skill" sets it after every check to the largest
    # k whose skill reaches min_skill, clipped to [horizon_min, horizon_max].
    horizon: Literal["fixed", "skill"] = "fixed"
    horizon_min: Annotated[int, Field(ge=1)] = 5
    horizon_max: Annotated[int, Field(ge=1)] = 15

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data):
        return _refuse_retired(data, RETIRED_TRUST_KEYS, "trust", "docs/model_trust.md")

    @model_validator(mode="after")
    def _horizons(self) -> TrustConfig:
        if not self.horizon_min <= self.horizon_max <= self.open_loop_steps:
            raise ValueError(f"horizon_min ({self.horizon_min}) <= horizon_max ({self.horizon_max}) <= "
                             f"open_loop_steps ({self.open_loop_steps}) must hold: skill is only measured up to "
                             "open_loop_steps")
        return self


class TopicsConfig(_Strict):
    """ROS topic names (relative names resolve in the node's namespace)."""

    joint_states: str = "joint_states"  # sensor_msgs/JointState
    imu: str = "imu"  # sensor_msgs/Imu
    odometry: str | None = None  # nav_msgs/Odometry (twist in the base frame); needed for base_lin_vel
    foot_contacts: str | None = None  # std_msgs/Float64MultiArray, one value per foot, > 0.5 = contact
    command: str = "forward_position_controller/commands"
    command_type: Literal["std_msgs/Float64MultiArray"] = "std_msgs/Float64MultiArray"
    estop: str = "estop"  # std_msgs/Bool, latched
    transitions: str = "transitions"  # dreamer_msgs/Transition
    policy_bundles: str = "policy_bundles"  # dreamer_msgs/PolicyBundle
    policy_events: str = "policy_events"  # dreamer_msgs/PolicyEvent: canary verdicts, rollbacks, overrides
    diagnostics: str = "/diagnostics"  # diagnostic_msgs/DiagnosticArray


# Keys of the canary section that were replaced (a clear error, not "unknown key").
RETIRED_CANARY_KEYS = {
    "max_over_optimism": ("over_optimism_share", "the over-optimism limit is relative to the reward scale now: a share "
                                                 "of the baseline's realised reward per step"),
}


class CanaryConfig(_Strict):
    """A newly accepted policy version first runs as a canary (docs/robot_config.md#canary).

    After ``episodes`` complete episodes (or as soon as the rest, each counted as the previous
    version's best, could not lift its mean over the threshold) the control node judges it and
    swaps back to the previous version by itself when it failed: its mean return lies below the
    bootstrap interval of the previous version's mean by more than the margin (the larger of
    ``return_margin`` standard deviations of that version's returns and ``return_tolerance`` times
    its mean's magnitude), or below the best trusted version's the same way, or its realised reward
    per step falls short of the manifest's imagined one by more than ``over_optimism_share`` times
    the magnitude of the previous version's realised reward per step.
    """

    episodes: Annotated[int, Field(ge=1)] = 5  # N: complete episodes of a canary before its verdict
    baseline_episodes: Annotated[int, Field(ge=2)] = 20  # M: complete episodes kept per version
    min_baseline_episodes: Annotated[int, Field(ge=2)] = 5  # fewer: the return check cannot be judged
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.9  # of the bootstrap interval of the previous mean
    bootstrap_samples: Annotated[int, Field(ge=100)] = 2000
    return_margin: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0  # in std of previous returns
    return_tolerance: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.05  # of |previous mean return|
    # Imagined minus realised reward per step may be at most this share of |the previous version's realised
    # reward per step| (relative: one default for every reward scale).
    over_optimism_share: PositiveFloat = 0.25

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data):
        return _refuse_retired(data, RETIRED_CANARY_KEYS, "canary", "docs/robot_config.md#canary")

    @model_validator(mode="after")
    def _windows(self) -> CanaryConfig:
        for key in ("episodes", "min_baseline_episodes"):
            if getattr(self, key) > self.baseline_episodes:
                raise ValueError(f"{key} ({getattr(self, key)}) must be <= baseline_episodes "
                                 f"({self.baseline_episodes}): only that many episodes are kept per version")
        return self


class RandomizationConfig(_Strict):
    """Domain randomisation ranges [low, high], sampled uniformly at every reset."""

    friction: tuple[PositiveFloat, PositiveFloat] = (0.6, 1.2)
    added_mass_kg: tuple[FiniteFloat, FiniteFloat] = (-0.5, 1.5)
    action_latency_s: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]] = (0.0, 0.02)

    @model_validator(mode="after")
    def _ordered(self) -> RandomizationConfig:
        for key in ("friction", "added_mass_kg", "action_latency_s"):
            low, high = getattr(self, key)
            if low > high:
                raise ValueError(f"{key}: low ({low}) must be <= high ({high})")
        return self


class SimConfig(_Strict):
    """The simulated robot (MuJoCo); absent for a real robot."""

    urdf: str = "pybullet_data:a1/a1.urdf"  # "pybullet_data:<path>" or a file path
    base_body: str = "trunk"
    foot_bodies: list[str] = Field(default_factory=lambda: ["FR_toe", "FL_toe", "RR_toe", "RL_toe"])
    foot_radius: PositiveFloat = 0.02  # m; touch zone is a sphere slightly larger than this
    contact_force_threshold: Annotated[float, Field(ge=0)] = 1.0  # N normal force counted as contact
    initial_height: PositiveFloat = 0.3  # m, base height at reset
    floor_friction: PositiveFloat = 1.0
    randomization: RandomizationConfig = Field(default_factory=RandomizationConfig)


class RobotConfig(_Strict):
    """A whole robot config (see docs/robot_config.md for every key)."""

    robot_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    joints: list[JointConfig] = Field(min_length=1)
    feet: list[str] = Field(default_factory=list)  # foot names in contact-flag order
    observation: list[ObservationTerm] = Field(min_length=1)
    action: ActionConfig = Field(default_factory=ActionConfig)
    control_rate_hz: PositiveFloat
    low_level_rate_hz: PositiveFloat
    reward: RewardConfig
    episode: EpisodeConfig
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    trust: TrustConfig = Field(default_factory=TrustConfig)
    topics: TopicsConfig = Field(default_factory=TopicsConfig)
    canary: CanaryConfig = Field(default_factory=CanaryConfig)
    sim: SimConfig | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> RobotConfig:
        problems = list(_cross_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def act_dim(self) -> int:
        return len(self.joints)

    @property
    def obs_dim(self) -> int:
        return sum(width for _, width in self.observation_layout())

    @property
    def dt(self) -> float:
        """Control period (s)."""
        return 1.0 / self.control_rate_hz

    @property
    def physics_dt(self) -> float:
        """Low-level (PD) period (s); the simulator's physics step."""
        return 1.0 / self.low_level_rate_hz

    @property
    def substeps(self) -> int:
        """Low-level steps per control period."""
        return round(self.low_level_rate_hz / self.control_rate_hz)

    @property
    def episode_steps(self) -> int:
        if self.episode.max_steps is not None:
            return self.episode.max_steps
        return max(1, round(self.episode.max_seconds * self.control_rate_hz))

    def observation_layout(self) -> list[tuple[str, int]]:
        """(term name, width) in observation order."""
        return [(t.name, OBSERVATION_TERMS[t.name].width(self)) for t in self.observation]

    def policy_spec(self) -> PolicySpec:
        """The observation/action contract a policy for this robot must match."""
        return PolicySpec(
            robot_id=self.robot_id,
            observation=tuple(self.observation_layout()),
            action_joints=tuple(self.joint_names),
            action_low=-self.action.clip,
            action_high=self.action.clip,
        )


def _cross_problems(cfg: RobotConfig):
    """Yield 'key.path: problem' for constraints that span several keys."""
    names = cfg.joint_names
    for i, name in enumerate(names):
        if name in names[:i]:
            yield f"joints.{i}.name: duplicate joint name {name!r}"
    ratio = cfg.low_level_rate_hz / cfg.control_rate_hz
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        yield (f"low_level_rate_hz: must be an integer multiple of control_rate_hz "
               f"({cfg.low_level_rate_hz} / {cfg.control_rate_hz} = {ratio:g})")
    if isinstance(cfg.action.scale, list) and len(cfg.action.scale) != len(names):
        yield f"action.scale: has {len(cfg.action.scale)} values but there are {len(names)} joints"
    yield from _gait_problems(cfg)
    seen_obs: set[str] = set()
    for i, term in enumerate(cfg.observation):
        if term.name in seen_obs:
            yield f"observation.{i}.name: term {term.name!r} appears twice"
            continue
        seen_obs.add(term.name)
        kind = OBSERVATION_TERMS[term.name]
        if kind.signal is not None:
            yield from _signal_problems(cfg, kind.signal, f"observation.{i}.name")
        problem = kind.check(cfg) if kind.check is not None else None
        if problem is not None:
            yield problem
    earlier: list[str] = []
    for i, term in enumerate(cfg.reward.terms):
        path = f"reward.terms.{i}"
        if term.name in earlier:
            yield f"{path}.name: duplicate reward term name {term.name!r}"
        for gate in term.gate:
            if gate not in earlier:
                yield f"{path}.gate: {gate!r} is not an earlier reward term (earlier: {earlier})"
        kind = REWARD_KINDS[term.kind]
        for signal in kind.signals:
            yield from _signal_problems(cfg, signal, f"{path}.kind")
        if kind.check is not None:
            yield from (f"{path}.{problem}" for problem in kind.check(term, cfg))
        if not kind.uses_joints and (term.joints is not None or term.target is not None):
            readers = [name for name, k in REWARD_KINDS.items() if k.uses_joints]
            yield f"{path}: joints/target only apply to {' and '.join(readers)} terms"
        earlier.append(term.name)
    if cfg.sim is not None and cfg.feet and len(cfg.sim.foot_bodies) != len(cfg.feet):
        yield f"sim.foot_bodies: has {len(cfg.sim.foot_bodies)} bodies for {len(cfg.feet)} feet"


def _gait_problems(cfg: RobotConfig):
    gait = cfg.action.gait
    observed = any(term.name == "gait_phase" for term in cfg.observation)
    if gait is None:
        if observed:
            yield "observation: the gait_phase term needs action.kind base_gait (a gait to take the phase of)"
        return
    if not observed:
        yield ("observation: action.kind base_gait needs the gait_phase term, or the policy cannot know "
               "where in the gait cycle it acts")
    if gait.frequency_hz > cfg.control_rate_hz / 2:
        yield (f"action.gait.frequency_hz: {gait.frequency_hz} Hz is above half the control rate "
               f"({cfg.control_rate_hz / 2:g} Hz); the control loop cannot follow it")
    seen: set[str] = set()
    for i, joint in enumerate(gait.joints):
        if joint.name not in cfg.joint_names:
            yield f"action.gait.joints.{i}.name: unknown joint {joint.name!r} (joints are {cfg.joint_names})"
        elif joint.name in seen:
            yield f"action.gait.joints.{i}.name: joint {joint.name!r} appears twice"
        seen.add(joint.name)


def _signal_problems(cfg: RobotConfig, signal: str, path: str):
    topic_field = OPTIONAL_SIGNAL_TOPIC.get(signal)
    if topic_field is not None and getattr(cfg.topics, topic_field) is None:
        yield (f"{path}: needs the {signal} signal, but topics.{topic_field} is not configured "
               f"(set it to the topic that provides it, or remove the term)")


def config_dirs() -> list[Path]:
    """Where robot config names are looked up: $DREAMER_ROBOT_CONFIGS (os.pathsep list), then the repo's."""
    dirs = [Path(p) for p in os.environ.get("DREAMER_ROBOT_CONFIGS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / "robot_configs")
    return dirs


def resolve_config_path(path_or_name: str | Path) -> Path:
    """A path as given, or a name like ``a1_sim`` looked up in :func:`config_dirs`."""
    candidate = Path(path_or_name)
    if candidate.suffix in (".yaml", ".yml") or candidate.parent != Path("."):
        if not candidate.is_file():
            raise ConfigError(f"{candidate}: robot config file not found")
        return candidate
    for directory in config_dirs():
        for suffix in (".yaml", ".yml"):
            if (directory / f"{path_or_name}{suffix}").is_file():
                return directory / f"{path_or_name}{suffix}"
    searched = ", ".join(str(d) for d in config_dirs())
    raise ConfigError(
        f"robot config {str(path_or_name)!r} not found in {searched} (set DREAMER_ROBOT_CONFIGS)"
    )


def load_robot_config(path_or_name: str | Path) -> RobotConfig:
    """Load and validate a robot config by path or by name (``"a1_sim"``)."""
    path = resolve_config_path(path_or_name)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: top level must be a mapping of keys, got {type(data).__name__}")
    return parse_robot_config(data, source=path.name)


def parse_robot_config(data: dict, source: str = "<robot config>") -> RobotConfig:
    """Validate an already-loaded mapping; ``source`` names it in errors."""
    try:
        return RobotConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {line}" for err in exc.errors() for line in _describe(err).splitlines()]
        raise ConfigError("\n".join(lines)) from None


def _describe(err: dict) -> str:
    loc = ".".join(str(part) for part in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check spelling; see docs/robot_config.md)"
    # Cross-key checks already carry their own key path.
    return f"{loc}: {msg}" if loc else msg
