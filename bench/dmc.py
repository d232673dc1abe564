"""Train the learner on DeepMind Control proprio tasks and compare with published DreamerV3 scores.

Runs in the optional ``.venv-dmc`` environment (dm_control needs ``mujoco<4``; see
docs/learner.md). Not part of CI. Example (a short budget, far below the published 100k frames):

    .venv-dmc/bin/python bench/dmc.py --task cartpole_balance --frames 4000 --preset xs

Frames are environment frames (action repeat included), as in the published numbers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config
from dreamer_core.runners.online import evaluate, train_online

# DreamerV3 (arXiv 2301.04104v1) DMC proprio, mean of 5 seeds, by env frames (the paper's score tables).
PUBLISHED = {
    "cartpole_balance": {50_000: 518, 100_000: 821},
    "walker_stand": {50_000: 414, 100_000: 821},
    "reacher_easy": {50_000: 611, 100_000: 727},
    "pendulum_swingup": {50_000: 160, 100_000: 716},
    "walker_walk": {50_000: 290, 100_000: 518, 200_000: 824, 500_000: 936},
}


class DMCEnv:
    """dm_control task behind the loop's ``reset``/``step`` interface, with action repeat and
    actions in [−1, 1] scaled to the task's bounds; observations are the flattened proprio dict."""

    def __init__(self, task: str, action_repeat: int, seed: int):
        from dm_control import suite  # only in .venv-dmc

        domain, name = task.split("_", 1)
        self.env = suite.load(domain, name, task_kwargs={"random": seed})
        spec = self.env.action_spec()
        self.low, self.high = spec.minimum, spec.maximum
        self.act_dim = spec.shape[0]
        self.obs_dim = sum(int(np.prod(v.shape)) for v in self.env.observation_spec().values())
        self.repeat = action_repeat

    @staticmethod
    def _flat(time_step) -> np.ndarray:
        return np.concatenate([np.asarray(v, np.float32).ravel() for v in time_step.observation.values()])

    def reset(self, seed: int | None = None) -> np.ndarray:
        return self._flat(self.env.reset())

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        scaled = self.low + (np.clip(action, -1, 1) + 1) / 2 * (self.high - self.low)
        reward = 0.0
        for _ in range(self.repeat):
            time_step = self.env.step(scaled)
            reward += time_step.reward or 0.0
            if time_step.last():
                break
        ended = time_step.last()
        # DMC episodes end by time limit (discount stays 1); discount 0 would be a true terminal.
        terminal = ended and time_step.discount == 0
        return self._flat(time_step), reward, terminal, ended and not terminal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="cartpole_balance", choices=sorted(PUBLISHED))
    parser.add_argument("--frames", type=int, default=10_000, help="env frames (agent steps × action repeat)")
    parser.add_argument("--prefill", type=int, default=2_500, help="random agent steps before training")
    parser.add_argument("--preset", default="s")
    # An environment wrapper setting, not a learner key: DreamerV3 uses 2 on DMC.
    parser.add_argument("--action-repeat", type=int, default=2, help="env frames per agent step")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_agent_config(args.preset)
    env = DMCEnv(args.task, args.action_repeat, args.seed)
    agent = Agent(env.obs_dim, env.act_dim, config, device=args.device, seed=args.seed)
    steps = args.frames // args.action_repeat
    start = time.perf_counter()
    train_online(agent, env, steps, prefill=min(args.prefill, steps), seed=args.seed)
    train_s = time.perf_counter() - start
    score = evaluate(agent, DMCEnv(args.task, args.action_repeat, args.seed + 100), args.eval_episodes,
                     seed=args.seed + 100)
    reference = ", ".join(f"{frames // 1000}k: {value}" for frames, value in PUBLISHED[args.task].items())
    print(f"task {args.task}  preset {args.preset}  device {args.device}  frames {args.frames}  "
          f"updates {agent.updates}  train {train_s:.0f}s")
    print(f"score {score:.1f} (mean of {args.eval_episodes} eval episodes)  |  published DreamerV3: {reference}")


if __name__ == "__main__":
    main()
