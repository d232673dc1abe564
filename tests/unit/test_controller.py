"""The control node's tick logic (dreamer_core.control) driven by the real MuJoCo A1."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from dreamer_core.control import Controller, InitialPolicy
from dreamer_core.envs.a1_mujoco import A1MujocoEnv
from dreamer_core.robots.config import load_robot_config


@pytest.fixture(scope="module")
def config():
    return load_robot_config("a1_sim")


class FixedPolicy:
    """Stands in for a PolicyRuntime: a constant action, a version, and counts of resets."""

    def __init__(self, version: int, value: float, act_dim: int = 12):
        self.version = version
        self.action = np.full(act_dim, value, dtype=np.float32)
        self.resets = 0
        self.first_flags: list[bool] = []
        self.executed_actions: list[np.ndarray] = []

    def reset(self):
        self.resets += 1

    def step(self, obs, *, explore, is_first=False, rng=None):
        self.first_flags.append(is_first)
        return self.action.copy()

    def executed(self, action):
        self.executed_actions.append(np.array(action))


def make(config, **kwargs):
    return Controller(config, session_id="test", initial_policy=InitialPolicy(config.act_dim, "stand"), **kwargs)


def drive(ctrl, env, ticks, start_time=0.0):
    """Run `ticks` control periods in closed loop; the sim time is the clock."""
    outs = []
    for _ in range(ticks):
        signals = env.read_signals()
        out = ctrl.tick(signals, now=signals.stamp + start_time)
        outs.append(out)
        env.apply_joint_targets(out.joint_targets if out.joint_targets is not None else env.read_signals().joint_pos)
    return outs


def test_episode_flags_seq_and_limits(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    outs = drive(ctrl, env, 30)
    ts = [t for o in outs for t in o.transitions]
    assert [t.seq for t in ts] == list(range(len(ts))) and len(ts) == 30
    assert ts[0].is_first and not any(t.is_first for t in ts[1:])
    assert ts[0].reward == 0.0 and all(np.isfinite(t.reward) for t in ts)
    assert all(t.obs.shape == (config.obs_dim,) for t in ts)
    lower = np.array([j.lower for j in config.joints]) + config.safety.joint_limit_margin_rad
    upper = np.array([j.upper for j in config.joints]) - config.safety.joint_limit_margin_rad
    for o in outs:
        assert np.all(o.joint_targets >= lower - 1e-12) and np.all(o.joint_targets <= upper + 1e-12)
    assert all(o.mode == "initial" for o in outs)


def test_time_limit_ends_episode_and_restarts(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    ctrl.max_steps = 5
    ts = [t for o in drive(ctrl, env, 7) for t in o.transitions]
    assert [t.is_last for t in ts[:5]] == [False] * 4 + [True]
    assert not ts[4].is_terminal and np.all(ts[4].action == 0)
    assert ts[5].is_first and ctrl.episodes == 2


def test_no_episode_starts_while_episodes_are_not_allowed(config):
    """Between episodes while the node waits for its reset service (a paced sim waiting for the learner)."""
    env = A1MujocoEnv(config)
    ctrl = make(config)
    ctrl.max_steps = 5
    first = drive(ctrl, env, 5)
    assert first[-1].episode_ended and ctrl.episodes == 1
    ctrl.episodes_allowed = False
    waiting = drive(ctrl, env, 10)
    assert all(o.mode == "wait" and not o.transitions and o.fault is None for o in waiting)
    assert all(o.joint_targets is not None for o in waiting) and ctrl.faults.counts() == {}
    ctrl.episodes_allowed = True
    ts = [t for o in drive(ctrl, env, 2) for t in o.transitions]
    assert ts[0].is_first and ts[0].seq == 5 and ctrl.episodes == 2


def test_stale_sensor_holds_and_cuts_episode(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    drive(ctrl, env, 5)
    signals = env.read_signals()
    stale_now = signals.stamp + (config.safety.stale_sensor_periods + 1) * config.dt
    out = ctrl.tick(signals, now=stale_now)
    assert out.fault == "stale_sensor" and out.mode == "hold"
    assert len(out.transitions) == 1 and out.transitions[0].is_last and not out.transitions[0].is_terminal
    assert out.joint_targets is not None and np.all(np.isfinite(out.joint_targets))
    again = ctrl.tick(signals, now=stale_now + config.dt)
    assert again.fault == "stale_sensor" and again.transitions == []
    assert ctrl.tick(None, now=0.0).fault == "stale_sensor"


def test_never_measured_robot_gets_no_command(config):
    ctrl = make(config)
    out = ctrl.tick(None, now=1.0)
    assert out.joint_targets is None and out.fault == "stale_sensor" and out.transitions == []


def test_fall_is_terminal(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    drive(ctrl, env, 3)
    signals = env.read_signals()
    angle = config.safety.max_tilt_rad + 0.2
    signals.base_quat = np.array([np.cos(angle / 2), np.sin(angle / 2), 0.0, 0.0])  # rolled over
    out = ctrl.tick(signals, now=signals.stamp)
    assert out.fault == "tilt" and out.episode_ended
    (t,) = out.transitions
    assert t.is_last and t.is_terminal


def test_nonfinite_sensor_never_reaches_targets(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    drive(ctrl, env, 3)
    signals = env.read_signals()
    signals.joint_vel[2] = np.nan
    out = ctrl.tick(signals, now=signals.stamp)
    assert out.fault == "nonfinite_sensor" and np.all(np.isfinite(out.joint_targets))


def test_estop_latches_until_cleared(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    drive(ctrl, env, 3)
    ctrl.safety.latch_estop()
    pose_at_stop = env.read_signals().joint_pos
    outs = drive(ctrl, env, 50)
    assert all(o.fault == "estop" and o.mode == "hold" for o in outs)
    assert outs[0].transitions and outs[0].transitions[0].is_last
    assert sum(len(o.transitions) for o in outs) == 1
    # The hold is the pose at the moment of the stop, frozen (no sagging), and the robot keeps it.
    assert all(np.array_equal(o.joint_targets, outs[0].joint_targets) for o in outs)
    assert np.allclose(outs[0].joint_targets, pose_at_stop)
    assert np.allclose(env.read_signals().joint_pos, pose_at_stop, atol=0.1)
    ctrl.safety.clear_estop()
    resumed = drive(ctrl, env, 2)
    assert resumed[0].fault is None and resumed[0].transitions[0].is_first


def test_nonfinite_action_is_not_commanded(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    ctrl.policies.accept(FixedPolicy(1, np.nan))
    outs = drive(ctrl, env, 2)
    assert outs[0].fault == "nonfinite_action"
    assert all(np.all(np.isfinite(o.joint_targets)) for o in outs)


def test_hot_swap_ends_the_episode_and_the_new_version_starts_afresh_with_soft_start(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    drive(ctrl, env, 10)
    v1 = FixedPolicy(1, 0.8)
    offered = threading.Thread(target=ctrl.policies.accept, args=(v1,))
    offered.start()
    offered.join()
    swap, *outs = drive(ctrl, env, 61)
    # The swap tick closes v0's episode on the real observation of that tick (is_last, not terminal) and holds:
    # every episode runs one version, so its return is that version's.
    (last,) = swap.transitions
    assert last.is_last and not last.is_terminal and last.policy_version == 0 and last.reward > 0
    assert swap.mode == "hold" and swap.episode_ended and ctrl.swaps == 1 and v1.resets >= 1
    ts = [t for o in outs for t in o.transitions]
    assert ts[0].is_first and ts[0].seq == last.seq + 1 and not any(t.is_first for t in ts[1:])
    assert all(t.policy_version == 1 for t in ts) and all(o.mode == "policy" for o in outs)
    target = ctrl.mapper.default + ctrl.mapper.scale * 0.8
    # Soft start: the first command after the swap stays near the measured pose, later ones reach the target.
    before = swap.joint_targets
    assert np.max(np.abs(outs[0].joint_targets - before)) < np.max(np.abs(target - before))
    assert np.allclose(outs[-1].joint_targets, np.clip(target, ctrl.safety.limits.lower,
                                                       ctrl.safety.limits.upper), atol=1e-6)
    v2 = FixedPolicy(2, -0.5)
    ctrl.policies.accept(v2)
    end, start = drive(ctrl, env, 2)
    assert ctrl.swaps == 2 and [t.policy_version for t in end.transitions] == [1] and end.transitions[0].is_last
    assert start.transitions[0].policy_version == 2 and start.transitions[0].is_first and v2.first_flags == [True]


def test_a_swap_on_a_faulty_tick_ends_the_episode_as_the_fault_does_in_the_old_version(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    drive(ctrl, env, 5)
    ctrl.policies.accept(FixedPolicy(1, 0.2))
    out = ctrl.tick(None, now=1.0)  # a required topic went silent on the swap tick
    (last,) = out.transitions
    assert out.fault == "stale_sensor" and last.is_last and last.policy_version == 0 and ctrl.policy_version == 1
    assert ctrl.tick(None, now=1.02).transitions == []


def test_rate_limit_bounds_target_steps(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    drive(ctrl, env, 60)  # past the soft start
    ctrl.policies.accept(FixedPolicy(1, -1.0))
    outs = drive(ctrl, env, 80)
    steps = np.abs(np.diff(np.stack([o.joint_targets for o in outs]), axis=0))
    assert steps.max() <= config.safety.max_action_rate * config.dt + 1e-9


def _prev_action_term(config, obs: np.ndarray) -> np.ndarray:
    start = 0
    for name, width in config.observation_layout():
        if name == "prev_action":
            return obs[start:start + width]
        start += width
    raise AssertionError("a1_sim observes prev_action")


class AlternatingPolicy(FixedPolicy):
    """Asks for +value and -value on alternate ticks: far beyond what the rate limit lets through."""

    def step(self, obs, *, explore, is_first=False, rng=None):
        self.action = -self.action
        return super().step(obs, explore=explore, is_first=is_first, rng=rng)


def test_replay_and_the_policy_get_the_rate_limited_action_the_motors_were_sent(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    drive(ctrl, env, 10)
    policy = AlternatingPolicy(1, 1.0)
    ctrl.policies.accept(policy)
    outs = drive(ctrl, env, 120)[1:]  # the first tick holds for the swap
    ts = [o.transitions[0] for o in outs]
    for o, t in zip(outs, ts, strict=True):
        np.testing.assert_array_equal(t.action, ctrl.mapper.executed(o.joint_targets))
    # Past the soft start the rate limit binds on every tick: the motors got steps of at most
    # max_action_rate * dt, never the policy's +-1 swings, and that is what replay holds.
    late = np.stack([t.action for t in ts[60:]])
    limit = config.safety.max_action_rate * config.dt / config.action.scale
    assert np.abs(np.diff(late, axis=0)).max() <= limit + 1e-6
    assert np.abs(np.diff(late, axis=0)).max() > 0.9 * limit  # the limiter was active
    assert np.abs(late).max() < 1.0
    np.testing.assert_array_equal(np.stack(policy.executed_actions), np.stack([t.action for t in ts]))
    for before, after in itertools.pairwise(ts):
        np.testing.assert_allclose(_prev_action_term(config, after.obs), before.action, atol=1e-6)


def test_learned_versions_explore_with_the_initial_policys_noise_not_the_actors(config):
    def actions(explore: bool) -> np.ndarray:
        env = A1MujocoEnv(config)
        ctrl = Controller(config, session_id="test", explore=explore,
                          initial_policy=InitialPolicy(config.act_dim, "random", amplitude=0.3, seed=3))
        ctrl.policies.accept(FixedPolicy(1, 0.0))
        outs = drive(ctrl, env, 120)
        return np.stack([t.action for o in outs[60:] for t in o.transitions if not t.is_last])

    noisy = actions(explore=True)
    assert 0.02 < noisy.std() < 0.15 and np.abs(noisy).max() <= 0.3 + 1e-6
    np.testing.assert_allclose(actions(explore=False), 0.0, atol=1e-6)


def test_random_initial_policy_is_bounded_and_smooth(config):
    policy = InitialPolicy(config.act_dim, "random", amplitude=0.3, seed=1)
    actions = np.stack([policy() for _ in range(500)])
    assert np.abs(actions).max() <= 0.3 and actions.std() > 0.01
    assert np.abs(np.diff(actions, axis=0)).max() < 0.2 * 0.6 + 1e-9
    with pytest.raises(ValueError, match="unknown"):
        InitialPolicy(12, "dance")


def test_end_session_closes_the_running_episode(config):
    env = A1MujocoEnv(config)
    ctrl = make(config)
    ts = [t for o in drive(ctrl, env, 4) for t in o.transitions]
    last = ctrl.end_session()
    assert last.is_last and not last.is_terminal and last.seq == ts[-1].seq + 1
    assert np.array_equal(last.obs, ts[-1].obs)
    assert ctrl.end_session() is None
