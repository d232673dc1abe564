"""Sensor readings as the control node builds them, and hypothesis strategies that break every field.

Shared by tests/unit/test_controller_fuzz.py (derandomized, bounded: the `control-ci`
profile) and bench/fuzz_control.py (long runs).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from dreamer_core.control import FAULTS, Controller, InitialPolicy, SensorReadings
from dreamer_core.robots.config import load_robot_config

settings.register_profile("control-ci", max_examples=150, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], database=None)

CONFIG = load_robot_config("a1_sim")
JOINTS = CONFIG.joint_names
DEFAULT_POSE = np.array([j.default for j in CONFIG.joints])
CLOCK0 = 1_000.0  # node clock (s) of the first tick; the monotonic clock starts at 0


def good_readings(tick: int = 0, pose=DEFAULT_POSE) -> SensorReadings:
    """What a healthy driver standing still publishes, as readings_from_msgs copies it."""
    stamp = CLOCK0 + tick * CONFIG.dt
    return SensorReadings(
        joint_names=list(JOINTS), joint_position=list(pose), joint_velocity=[0.0] * len(JOINTS),
        joint_effort=[], orientation_xyzw=[0.0, 0.0, 0.0, 1.0], angular_velocity=[0.0, 0.0, 0.0],
        linear_velocity=[0.0, 0.0, 0.0], foot_contacts=[1.0] * len(CONFIG.feet),
        header_stamps={"joint_states": stamp, "imu": stamp, "odometry": stamp},
        clock=stamp, received=tick * CONFIG.dt,
    )


class ScriptedPolicy:
    """A policy runtime stand-in that returns the given action or raises."""

    def __init__(self, version: int, action):
        self.version = version
        self.action = action

    def reset(self):
        pass

    def step(self, obs, *, explore, is_first=False, rng=None):
        if isinstance(self.action, Exception):
            raise self.action
        return self.action

    def executed(self, action):
        pass


def make_controller(policy=None) -> Controller:
    ctrl = Controller(CONFIG, session_id="fuzz", initial_policy=InitialPolicy(CONFIG.act_dim, "random", seed=1))
    if policy is not None:
        ctrl.policies.accept(policy)
    return ctrl


# -- strategies ------------------------------------------------------------------------

nasty_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True, width=64),
    st.sampled_from([0.0, -0.0, 1e40, -1e40, 1e308, 5e-324, float("nan"), float("inf"), -float("inf")]),
)
# Mostly plausible values (so later stages run), sometimes beyond the bounds, sometimes anything at all.
values = st.one_of(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0), st.floats(-100.0, 100.0), nasty_floats)


def vectors(width: int):
    """A list of `width` floats, or of a wrong length."""
    return st.one_of(st.lists(values, min_size=width, max_size=width),
                     st.lists(values, min_size=0, max_size=width + 3))


@st.composite
def joint_names(draw):
    names = list(JOINTS)
    change = draw(st.sampled_from(["same", "same", "shuffled", "missing", "extra", "renamed", "repeated"]))
    if change == "shuffled":
        names = draw(st.permutations(names))
    elif change == "missing":
        names.pop(draw(st.integers(0, len(names) - 1)))
    elif change == "extra":
        names.append(draw(st.sampled_from(["arm_joint", "FR_hip_joint_2", ""])))
    elif change == "renamed":
        names[draw(st.integers(0, len(names) - 1))] = draw(st.text(max_size=12))
    elif change == "repeated":
        names[draw(st.integers(1, len(names) - 1))] = names[0]
    return names


def tilted(angle: float, azimuth: float) -> list[float]:
    """The unit quaternion (x, y, z, w) of a tilt by `angle` about a horizontal axis at `azimuth`."""
    half = angle / 2
    return [np.sin(half) * np.cos(azimuth), np.sin(half) * np.sin(azimuth), 0.0, np.cos(half)]


quaternions = st.one_of(
    st.just([0.0, 0.0, 0.0, 1.0]),
    st.builds(tilted, st.floats(0.0, np.pi), st.floats(0.0, 2 * np.pi)),
    st.just([0.0, 0.0, 0.0, 0.0]),  # a driver without orientation
    st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4),
    st.lists(nasty_floats, min_size=4, max_size=4),
)


# Each field is broken in about one of four draws, so single faults are common, not just pile-ups.
sometimes = st.sampled_from([True, False, False, False])


@st.composite
def readings(draw, tick: int) -> SensorReadings:
    """Readings of tick `tick` with any field possibly broken; stamps may run backwards or ahead."""
    r = good_readings(tick)
    fields = {}
    if draw(sometimes):
        fields["joint_names"] = draw(joint_names())
    for name, width in (("joint_position", len(JOINTS)), ("joint_velocity", len(JOINTS)),
                        ("angular_velocity", 3), ("linear_velocity", 3), ("foot_contacts", len(CONFIG.feet))):
        if draw(sometimes):
            fields[name] = draw(vectors(width))
    if draw(sometimes):
        fields["joint_effort"] = draw(st.one_of(st.just([]), vectors(len(JOINTS))))
    if draw(sometimes):
        fields["orientation_xyzw"] = draw(quaternions)
    if draw(sometimes):
        offset = draw(st.one_of(st.floats(-5.0, 5.0), nasty_floats))
        topic = draw(st.sampled_from(["joint_states", "imu", "odometry"]))
        fields["header_stamps"] = {**r.header_stamps, topic: r.header_stamps[topic] + offset}
    if draw(sometimes):
        fields["received"] = r.received - draw(st.floats(0.0, 1.0))  # an old reading
    return dataclasses.replace(r, **fields)


actions = st.one_of(
    st.lists(st.floats(-1.0, 1.0), min_size=12, max_size=12).map(np.array),
    st.lists(nasty_floats, min_size=12, max_size=12).map(np.array),
    st.lists(st.floats(-1.0, 1.0), min_size=0, max_size=15).map(np.array),
    st.sampled_from([RuntimeError("onnxruntime failed"), ValueError("bad observation")]),
)


@st.composite
def episodes(draw):
    """(policy or None, [readings or None per tick]): a short run of ticks with faults mixed in."""
    policy = draw(st.one_of(st.none(), actions.map(lambda a: ScriptedPolicy(1, a))))
    ticks = []
    for tick in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["good", "fuzzed", "fuzzed", "none"]))
        ticks.append(good_readings(tick) if kind == "good" else None if kind == "none" else draw(readings(tick)))
    return policy, ticks


# -- invariants --------------------------------------------------------------------------

def run_and_check(policy, ticks) -> list:
    """Tick through `ticks`; assert the tick invariants; returns the outputs."""
    ctrl = make_controller(policy)
    limits = ctrl.safety.limits
    commanded = False
    outs = []
    for i, inputs in enumerate(ticks):
        out = ctrl.tick(inputs, now=i * CONFIG.dt)  # must not raise
        outs.append(out)
        if out.fault is not None:
            assert out.fault.split(":", 1)[0] in FAULTS, out.fault
            assert out.mode == "hold"
        if out.joint_targets is None:
            # Only before any plausible measurement, so never after a command was sent.
            assert not commanded, f"tick {i}: no command after one was sent ({out.fault})"
            continue
        commanded = True
        targets = np.asarray(out.joint_targets)
        assert targets.shape == (CONFIG.act_dim,) and np.isfinite(targets).all()
        assert np.all(targets >= limits.lower - 1e-9) and np.all(targets <= limits.upper + 1e-9), targets
        for t in out.transitions:
            assert np.isfinite(t.obs).all() and np.isfinite(t.action).all() and np.isfinite(t.reward)
    return outs
