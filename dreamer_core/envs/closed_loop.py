"""The control node's loop without ROS: the controller drives the MuJoCo A1 for one episode.

For tests and benches that need what the robot would do (safety, rate limit, soft start, the
initial policy's noise) at simulator speed; the sim stack runs the same ticks over DDS.
"""

from __future__ import annotations

from dataclasses import dataclass

from dreamer_core.control import Controller, InitialPolicy
from dreamer_core.envs.a1_mujoco import A1MujocoEnv
from dreamer_core.robots.config import RobotConfig
from dreamer_core.storage.records import Transition


def run_episode(ctrl: Controller, env: A1MujocoEnv) -> list[Transition]:
    """Tick ``ctrl`` on ``env``'s readings until an episode ends; its transitions. The caller resets
    the robot (``env.reset`` / ``env.reset_physics``) before the next one, as the sim node does."""
    transitions: list[Transition] = []
    while True:
        signals = env.read_signals()
        out = ctrl.tick(signals, now=signals.stamp)
        transitions += out.transitions
        if out.episode_ended:
            return transitions
        env.apply_joint_targets(out.joint_targets)


@dataclass(frozen=True)
class Outcome:
    """One episode: its return, the base's travel along the world x axis (the heading it starts with), a fall."""

    ret: float
    forward_m: float
    fell: bool


def outcomes(config: RobotConfig, policy, *, episodes: int, seed: int, amplitude: float) -> list[Outcome]:
    """``episodes`` episodes of ``policy`` (a PolicyRuntime; None: the initial policy alone) on the
    domain-randomised MuJoCo A1, exploring as the robot does: the initial policy's noise of
    ``amplitude`` around the policy's mean. Episode i uses seed ``seed + i`` (same draws for every
    policy, so two policies are compared on the same terrain, masses and noise)."""
    env = A1MujocoEnv(config, seed=seed, randomize=True)
    results = []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        noise = InitialPolicy(config.act_dim, "random", amplitude=amplitude, seed=seed + episode)
        ctrl = Controller(config, session_id="closed-loop", seed=seed + episode, initial_policy=noise)
        if policy is not None:
            policy.reset()
            ctrl.policy = policy
        start = env.base_position()[0]
        transitions = run_episode(ctrl, env)
        results.append(Outcome(float(sum(t.reward for t in transitions)), float(env.base_position()[0] - start),
                               any(t.is_terminal for t in transitions)))
    return results
