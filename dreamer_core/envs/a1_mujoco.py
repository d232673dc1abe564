"""The Unitree A1 in MuJoCo, driven by a robot config (headless).

The model is assembled at runtime from the URDF that ships in the ``pybullet``
wheel (``pybullet_data/a1/a1.urdf``): visual meshes are dropped, then mjSpec adds
a free joint on the base, a floor, an IMU site (orientation, gyro, accelerometer,
velocimeter), a touch zone on each foot and one PD position actuator per joint.
The PD law ``tau = kp (q* - q) - kd qdot``, clipped to the joint's effort limit,
runs at every physics step (``1 / low_level_rate_hz``). Robot geoms do not
collide with each other, only with the floor.

Observations and rewards come from :mod:`dreamer_core.robots`, exactly as on the
real robot; see docs/simulation.md.
"""

from __future__ import annotations

import collections
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np

from dreamer_core.robots.action import ActionMapper
from dreamer_core.robots.config import RobotConfig
from dreamer_core.robots.observation import ObservationBuilder
from dreamer_core.robots.reward import RewardFunction
from dreamer_core.robots.signals import RobotSignals

# Touch zones are this much larger than the foot sphere so resting contacts fall inside.
_TOUCH_MARGIN = 1.25


def resolve_urdf(spec: str) -> Path:
    """``pybullet_data:<relative path>`` or a plain path -> an existing URDF file."""
    if spec.startswith("pybullet_data:"):
        try:
            import pybullet_data
        except ImportError as exc:
            raise RuntimeError("sim.urdf uses pybullet_data, but the pybullet wheel is not installed "
                               "(pip install the 'sim' extra of dreamer_core)") from exc
        path = Path(pybullet_data.getDataPath()) / spec.removeprefix("pybullet_data:")
    else:
        path = Path(spec).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"sim.urdf: {path} does not exist")
    return path


def build_model(config: RobotConfig) -> mujoco.MjModel:
    """Compile the MuJoCo model for ``config`` (actuator i drives config joint i)."""
    sim = config.sim
    if sim is None:
        raise ValueError(f"robot config {config.robot_id!r} has no 'sim' section; it describes a real robot")
    root = ET.parse(resolve_urdf(sim.urdf)).getroot()
    for link in root.findall("link"):
        for visual in link.findall("visual"):
            link.remove(visual)  # meshes are only visual; dropping them avoids mesh paths entirely
    compiler = ET.SubElement(ET.SubElement(root, "mujoco"), "compiler")
    compiler.attrib.update(fusestatic="false", discardvisual="false", balanceinertia="true")
    spec = mujoco.MjSpec.from_string(ET.tostring(root, encoding="unicode"))
    spec.option.timestep = config.physics_dt
    # Implicit in the actuator damping: stable PD at 500 Hz with stiff gains.
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST

    base = spec.body(sim.base_body)
    if base is None:
        raise ValueError(f"sim.base_body: no body {sim.base_body!r} in {sim.urdf}")
    for geom in spec.geoms:
        geom.contype, geom.conaffinity = 1, 0  # collide with the floor only
    base.add_freejoint(name="base_free")
    spec.worldbody.add_geom(
        name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05], contype=0, conaffinity=1,
        friction=[sim.floor_friction, 0.005, 0.0001], priority=1,  # priority: the floor's friction rules
    )
    base.add_site(name="imu", pos=[0, 0, 0])
    for kind, name in (
        (mujoco.mjtSensor.mjSENS_FRAMEQUAT, "imu_quat"), (mujoco.mjtSensor.mjSENS_GYRO, "imu_gyro"),
        (mujoco.mjtSensor.mjSENS_ACCELEROMETER, "imu_acc"), (mujoco.mjtSensor.mjSENS_VELOCIMETER, "imu_vel"),
    ):
        spec.add_sensor(name=name, type=kind, objtype=mujoco.mjtObj.mjOBJ_SITE, objname="imu")
    for i, foot in enumerate(sim.foot_bodies):
        body = spec.body(foot)
        if body is None:
            raise ValueError(f"sim.foot_bodies.{i}: no body {foot!r} in {sim.urdf}")
        body.add_site(name=f"touch_{i}", type=mujoco.mjtGeom.mjGEOM_SPHERE,
                      size=[sim.foot_radius * _TOUCH_MARGIN, 0, 0])
        spec.add_sensor(name=f"touch_{i}", type=mujoco.mjtSensor.mjSENS_TOUCH,
                        objtype=mujoco.mjtObj.mjOBJ_SITE, objname=f"touch_{i}")
    for i, joint in enumerate(config.joints):
        urdf_joint = spec.joint(joint.name)
        if urdf_joint is None:
            raise ValueError(f"joints.{i}.name: no joint {joint.name!r} in {sim.urdf}")
        effort = joint.effort_limit or float(np.max(np.abs(urdf_joint.actfrcrange)))
        if not effort > 0:
            raise ValueError(f"joints.{i}.effort_limit: the URDF gives none for {joint.name!r}; set it")
        actuator = spec.add_actuator(name=joint.name, target=joint.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        actuator.set_to_position(kp=joint.kp, kv=joint.kd)
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = [-effort, effort]
    return spec.compile()


class A1MujocoEnv:
    """Plain env: ``reset()``/``step(action)`` return dicts with the policy observation and flags.

    ``apply_joint_targets`` / ``step_physics`` drive the physics with joint
    position targets directly (for the sim ROS node, whose targets come from the
    control node); before any target arrives the PD holds the default pose.
    ``actuated=False`` switches the motors off (a limp robot).
    """

    def __init__(self, config: RobotConfig, seed: int = 0, randomize: bool = False, actuated: bool = True):
        self.config = config
        self.model = build_model(config)
        self.data = mujoco.MjData(self.model)
        self.randomize = randomize
        self.rng = np.random.default_rng(seed)
        if not actuated:
            self.model.actuator_gainprm[:] = 0.0
            self.model.actuator_biasprm[:] = 0.0
        m = self.model
        joint_ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j.name) for j in config.joints]
        self._qadr = np.array([m.jnt_qposadr[j] for j in joint_ids])
        self._dadr = np.array([m.jnt_dofadr[j] for j in joint_ids])
        self._sensor = {
            m.sensor(i).name: slice(m.sensor_adr[i], m.sensor_adr[i] + m.sensor_dim[i])
            for i in range(m.nsensor)
        }
        feet = range(len(config.sim.foot_bodies))
        self._touch = np.array([m.sensor_adr[m.sensor(f"touch_{i}").id] for i in feet])
        self._base = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, config.sim.base_body)
        self._floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        self._nominal_mass = float(m.body_mass[self._base])
        self._default = np.array([j.default for j in config.joints])

        self.mapper = ActionMapper(config)
        self.observer = ObservationBuilder(config)
        self.reward_fn = RewardFunction(config)
        self._pending: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._latency_steps = 0
        self._physics_steps = 0
        self._steps = 0
        self._prev_action = np.zeros(config.act_dim)
        self._done = True
        self.domain: dict[str, float] = {}
        self.reset_physics()

    @property
    def dt(self) -> float:
        """Control period (s)."""
        return self.config.dt

    @property
    def physics_dt(self) -> float:
        """Physics (= PD) step (s)."""
        return self.model.opt.timestep

    def reset_physics(self) -> RobotSignals:
        """Put the robot standing at the default pose (new domain sample if randomising); no episode logic."""
        m, d, sim = self.model, self.data, self.config.sim
        mujoco.mj_resetData(m, d)
        d.qpos[0:3] = [0.0, 0.0, sim.initial_height]
        d.qpos[3:7] = [1.0, 0.0, 0.0, 0.0]
        d.qpos[self._qadr] = self._default
        friction, mass, latency = sim.floor_friction, 0.0, 0.0
        if self.randomize:
            rnd = sim.randomization
            friction = self.rng.uniform(*rnd.friction)
            mass = self.rng.uniform(*rnd.added_mass_kg)
            latency = self.rng.uniform(*rnd.action_latency_s)
        m.geom_friction[self._floor, 0] = friction
        m.body_mass[self._base] = self._nominal_mass + mass
        self._latency_steps = round(latency / self.physics_dt)
        self.domain = {"friction": float(friction), "added_mass_kg": float(mass),
                       "action_latency_s": self._latency_steps * self.physics_dt}
        self._pending.clear()
        self._physics_steps = 0
        d.ctrl[:] = self._default  # no targets yet: hold the default pose
        mujoco.mj_forward(m, d)
        return self.read_signals()

    def reset(self, seed: int | None = None) -> dict:
        """Start an episode; returns the first step dict (``is_first`` True)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        signals = self.reset_physics()
        self.mapper.reset(signals.joint_pos)
        self._prev_action = np.zeros(self.config.act_dim)
        self._steps = 0
        self._done = False
        obs = self.observer.build(signals, self._prev_action, self.mapper.phase)
        return self._result(obs, signals, 0.0, {}, first=True, last=False, terminal=False)

    def step(self, action: np.ndarray) -> dict:
        """One control period under policy ``action`` (clipped to [-1, 1]^J by the action mapper).

        The result's ``action`` is the one the targets carry out (after the low-pass and the joint
        limits), as the control node records it; the reward and the next observation use it. Every
        episode starts at heading 0, so the world frame is the control node's episode frame."""
        if self._done:
            raise RuntimeError("episode is over (or reset() was never called): call reset() first")
        targets = self.mapper(action)
        action = self.mapper.executed(targets)
        signals = self.apply_joint_targets(targets)
        reward, terms = self.reward_fn(signals, action, self._prev_action)
        self._steps += 1
        terminal = self.reward_fn.is_fallen(signals)
        last = terminal or self._steps >= self.config.episode_steps
        self._done = last
        obs = self.observer.build(signals, action, self.mapper.phase)
        self._prev_action = action
        result = self._result(obs, signals, reward, terms, first=False, last=last, terminal=terminal)
        result["action"] = action
        return result

    def apply_joint_targets(self, targets: np.ndarray) -> RobotSignals:
        """Run one control period of PD physics toward ``targets`` [J] (rad); return the new signals."""
        self.step_physics(targets, self.config.substeps)
        return self.read_signals()

    def step_physics(self, targets: np.ndarray | None, n_substeps: int) -> None:
        """Advance ``n_substeps`` physics steps.

        ``targets`` (None: keep the last ones) take effect after the action latency.
        """
        if targets is not None:
            targets = np.asarray(targets, dtype=np.float64)
            if targets.shape != self._default.shape or not np.all(np.isfinite(targets)):
                raise ValueError(f"joint targets: expected {self._default.size} finite values, got {targets}")
            self._pending.append((self._physics_steps + self._latency_steps, targets.copy()))
        remaining = int(n_substeps)
        if remaining < 0:
            raise ValueError(f"n_substeps must be >= 0, got {n_substeps}")
        while remaining > 0:
            while self._pending and self._pending[0][0] <= self._physics_steps:
                self.data.ctrl[:] = self._pending.popleft()[1]
            run = remaining
            if self._pending:
                run = min(run, self._pending[0][0] - self._physics_steps)
            mujoco.mj_step(self.model, self.data, nstep=run)
            self._physics_steps += run
            remaining -= run

    def read_signals(self) -> RobotSignals:
        """Current sensor readings, as a real robot's topics would give them (ground-truth base velocity)."""
        d, sensor = self.data, self._sensor
        contacts = (d.sensordata[self._touch] > self.config.sim.contact_force_threshold).astype(np.float64)
        return RobotSignals(
            joint_pos=d.qpos[self._qadr].copy(),
            joint_vel=d.qvel[self._dadr].copy(),
            base_quat=d.sensordata[sensor["imu_quat"]].copy(),
            base_ang_vel=d.sensordata[sensor["imu_gyro"]].copy(),
            base_lin_vel=d.sensordata[sensor["imu_vel"]].copy(),
            foot_contacts=contacts,
            stamp=float(d.time),
        )

    def base_position(self) -> np.ndarray:
        """World position of the base (m); for tests and logging, not an observation."""
        return self.data.qpos[0:3].copy()

    def imu_acceleration(self) -> np.ndarray:
        """Accelerometer reading (m/s^2, body frame, includes gravity), for sensor_msgs/Imu."""
        return self.data.sensordata[self._sensor["imu_acc"]].copy()

    def _result(self, obs, signals, reward, terms, first, last, terminal) -> dict:
        return {"obs": obs, "signals": signals, "reward": float(reward), "reward_terms": terms,
                "is_first": first, "is_last": last, "is_terminal": terminal}
