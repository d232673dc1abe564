"""A tick can never die or lie: each malformed or implausible reading, and each exception, is a named
fault with the safe command, and the next good tick acts again."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
from controller_fuzz import CONFIG, ScriptedPolicy, good_readings, make_controller

from dreamer_core.control import FAULTS
from dreamer_core.control.faults import STAGES
from dreamer_core.envs.a1_mujoco import A1MujocoEnv

DOCS = Path(__file__).resolve().parents[2] / "docs"
LIMITS_LOWER = np.array([j.lower for j in CONFIG.joints]) + CONFIG.safety.joint_limit_margin_rad
LIMITS_UPPER = np.array([j.upper for j in CONFIG.joints]) - CONFIG.safety.joint_limit_margin_rad


def warmed_up(ticks: int = 5):
    """A controller and a MuJoCo A1 after a few good ticks (an episode is running)."""
    env = A1MujocoEnv(CONFIG)
    ctrl = make_controller()
    for _ in range(ticks):
        signals = env.read_signals()
        out = ctrl.tick(signals, now=signals.stamp)
        env.apply_joint_targets(out.joint_targets)
    return ctrl, env, out


def assert_safe_hold(out, fault: str, previous_targets):
    assert out.fault == fault and out.mode == "hold"
    assert out.joint_targets is not None and np.isfinite(out.joint_targets).all()
    assert np.all(out.joint_targets >= LIMITS_LOWER - 1e-9) and np.all(out.joint_targets <= LIMITS_UPPER + 1e-9)
    if previous_targets is not None:  # untrusted sensors: the last command we sent is held
        assert np.array_equal(out.joint_targets, previous_targets)


@pytest.mark.parametrize("field, value, fault", [
    ("base_quat", np.zeros(4), "quaternion_norm"),  # drivers without orientation publish this
    ("base_quat", np.array([2.0, 0.0, 0.0, 0.0]), "quaternion_norm"),
    ("joint_vel", np.full(12, 1e40), "joint_velocity_limit"),
    ("foot_contacts", np.ones(3), "contact_count"),
    ("foot_contacts", np.array([1.0, 0.0, 7.0, 1.0]), "contact_value"),
    ("base_ang_vel", np.array([0.0, 500.0, 0.0]), "angular_velocity_limit"),
    ("base_lin_vel", np.array([80.0, 0.0, 0.0]), "linear_velocity_limit"),
    ("joint_pos", np.full(12, 9.0), "joint_position_limit"),
    ("joint_pos", np.zeros(11), "signal_shape"),
    ("base_ang_vel", np.array([0.0, np.nan, 0.0]), "nonfinite_sensor"),
])
def test_implausible_signal_holds_with_its_fault_and_recovers(field, value, fault):
    ctrl, env, last = warmed_up()
    signals = env.read_signals()
    bad = dataclasses.replace(signals, **{field: value})
    out = ctrl.tick(bad, now=bad.stamp)
    assert_safe_hold(out, fault, last.joint_targets)
    assert out.episode_ended and out.transitions[0].is_last and not out.transitions[0].is_terminal
    assert ctrl.faults.counts()[fault] == 1 and ctrl.current_fault.name == fault
    again = ctrl.tick(signals, now=signals.stamp)
    assert again.fault is None and again.transitions[0].is_first and ctrl.current_fault is None


def test_joint_effort_beyond_its_bound_is_a_fault():
    ctrl, env, last = warmed_up()
    signals = dataclasses.replace(env.read_signals(), joint_effort=np.full(12, 500.0))
    assert_safe_hold(ctrl.tick(signals, now=signals.stamp), "joint_effort_limit", last.joint_targets)


@pytest.mark.parametrize("change, fault", [
    (lambda r: dict(joint_names=r.joint_names[:-1]), "joint_names"),  # missing
    (lambda r: dict(joint_names=[*r.joint_names, "arm_joint"]), "joint_names"),  # extra
    (lambda r: dict(joint_names=["fr_hip", *r.joint_names[1:]]), "joint_names"),  # renamed
    (lambda r: dict(joint_names=[r.joint_names[1], *r.joint_names[1:]]), "joint_names"),  # repeated
    (lambda r: dict(joint_position=r.joint_position[:-1]), "joint_state_length"),
    (lambda r: dict(joint_velocity=[]), "joint_state_length"),
    (lambda r: dict(joint_effort=[1.0, 2.0]), "joint_state_length"),
    (lambda r: dict(foot_contacts=[1.0] * 5), "contact_count"),
    (lambda r: dict(orientation_xyzw=[0.0, 0.0, 0.0, 0.0]), "quaternion_norm"),
    (lambda r: dict(header_stamps={**r.header_stamps, "imu": r.clock + 3600.0}), "stamp_in_future"),
    (lambda r: dict(header_stamps={**r.header_stamps, "joint_states": r.clock - 1.0}), "stamp_out_of_order"),
    (lambda r: dict(header_stamps={**r.header_stamps, "odometry": float("nan")}), "nonfinite_sensor"),
])
def test_malformed_messages_are_named_faults_never_stale_sensor(change, fault):
    ctrl = make_controller(ScriptedPolicy(1, np.zeros(12, np.float32)))
    for tick in range(3):
        last = ctrl.tick(good_readings(tick), now=tick * CONFIG.dt)
    assert last.fault is None and last.mode == "policy"
    bad = dataclasses.replace(good_readings(3), **change(good_readings(3)))
    out = ctrl.tick(bad, now=3 * CONFIG.dt)
    assert_safe_hold(out, fault, last.joint_targets)
    assert fault in ctrl.faults.last.name and ctrl.faults.last.detail
    recovered = ctrl.tick(good_readings(4), now=4 * CONFIG.dt)
    assert recovered.fault is None and recovered.mode == "policy"


def test_joints_in_another_order_are_reordered_by_name():
    ctrl = make_controller()
    r = good_readings(0)
    order = list(reversed(range(12)))
    shuffled = dataclasses.replace(r, joint_names=[r.joint_names[i] for i in order],
                                   joint_position=[r.joint_position[i] for i in order])
    out = ctrl.tick(shuffled, now=0.0)
    assert out.fault is None
    assert np.allclose(out.transitions[0].obs[:12], 0.0)  # joint_pos term: offset from the default pose


class Broken:
    """Raises from whichever method the test names."""

    def __init__(self, inner, method: str):
        self.inner, self.method = inner, method

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, *args, **kwargs):
        if self.method == "__call__":
            raise RuntimeError("boom")
        return self.inner(*args, **kwargs)

    def build(self, *args, **kwargs):
        raise RuntimeError("boom")


@pytest.mark.parametrize("stage, breaks", [
    ("policy", lambda c: c.policies.accept(ScriptedPolicy(1, RuntimeError("onnxruntime failed")))),
    ("mapping", lambda c: setattr(c, "mapper", Broken(c.mapper, "__call__"))),
    ("reward", lambda c: setattr(c, "reward_fn", Broken(c.reward_fn, "__call__"))),
    ("observation", lambda c: setattr(c, "builder", Broken(c.builder, "build"))),
])
def test_an_exception_in_any_stage_is_a_named_fault_and_a_hold(stage, breaks):
    assert stage in STAGES
    ctrl = make_controller()
    for tick in range(3):
        last = ctrl.tick(good_readings(tick), now=tick * CONFIG.dt)
    breaks(ctrl)
    outs = [ctrl.tick(good_readings(tick), now=tick * CONFIG.dt) for tick in range(3, 9)]
    # The faulting tick ends the episode, unless a swap (which ends it on its own tick) just did.
    ender = outs[0]
    if stage == "policy":  # the new policy first runs on the tick after the swap
        assert outs[0].fault is None
        last, outs = outs[0], outs[1:]
    assert ender.episode_ended and ender.transitions[0].is_last
    assert_safe_hold(outs[0], f"tick_exception:{stage}", last.joint_targets)
    # The loop keeps going: every later tick tries again (a new episode's first step computes no
    # reward, so a broken reward faults every other tick) and holds safely whenever it fails.
    for out in outs[1:]:
        assert out.fault in (None, f"tick_exception:{stage}")
        assert np.all(out.joint_targets >= LIMITS_LOWER - 1e-9) and np.all(out.joint_targets <= LIMITS_UPPER + 1e-9)
    assert ctrl.last_exception.startswith(f"tick_exception:{stage}: RuntimeError: ")
    assert ctrl.faults.counts()[f"tick_exception:{stage}"] >= 3


def test_no_command_before_the_robot_was_ever_measured_then_always_one():
    ctrl = make_controller()
    assert ctrl.tick(None, now=0.0).joint_targets is None
    r = good_readings(1)
    assert ctrl.tick(dataclasses.replace(r, joint_names=["x"]), now=CONFIG.dt).joint_targets is None
    assert ctrl.tick(good_readings(2), now=2 * CONFIG.dt).joint_targets is not None
    for tick, inputs in enumerate([None, dataclasses.replace(good_readings(4), joint_names=["x"])], start=3):
        assert ctrl.tick(inputs, now=tick * CONFIG.dt).joint_targets is not None


def test_estop_outranks_a_malformed_message():
    ctrl = make_controller()
    ctrl.tick(good_readings(0), now=0.0)
    ctrl.safety.latch_estop("test")
    out = ctrl.tick(dataclasses.replace(good_readings(1), joint_names=["x"]), now=CONFIG.dt)
    assert out.fault == "estop"


def test_every_fault_and_stage_is_documented():
    nodes = (DOCS / "nodes.md").read_text()
    for name in FAULTS:
        assert f"`{name}" in nodes, f"fault {name} missing from docs/nodes.md"
    for stage in STAGES:
        assert f"`tick_exception:{stage}`" in nodes, f"stage {stage} missing from docs/nodes.md"
    config_docs = (DOCS / "robot_config.md").read_text()
    for key in type(CONFIG.safety.sensor_bounds).model_fields:
        assert f"`sensor_bounds.{key}`" in config_docs, f"safety.sensor_bounds.{key} missing from docs"


def test_validator_samples_while_the_control_thread_ticks():
    """The bundle validator copies recent observations while the control thread adds them."""
    ctrl = make_controller()
    stop = threading.Event()
    errors = []

    def control():
        tick = 0
        while not stop.is_set():
            ctrl.tick(good_readings(tick), now=tick * CONFIG.dt)
            tick += 1

    thread = threading.Thread(target=control)
    thread.start()
    try:
        for _ in range(2000):
            try:
                samples = ctrl.recent_obs.snapshot()
            except Exception as exc:  # what the old deque did: "mutated during iteration"
                errors.append(exc)
                continue
            if samples is not None:
                assert samples.ndim == 2 and samples.shape[1] == CONFIG.obs_dim and np.isfinite(samples).all()
    finally:
        stop.set()
        thread.join()
    assert not errors
