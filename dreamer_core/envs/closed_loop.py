"""The control node's loop without ROS: the controller drives the MuJoCo A1 for one episode.

For tests and benches that need what the robot would do (safety, rate limit, soft start, the
initial policy's noise) at simulator speed; the sim stack runs the same ticks over DDS.
"""

from __future__ import annotations

from dreamer_core.control import Controller
from dreamer_core.envs.a1_mujoco import A1MujocoEnv
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
