"""The learner recipe on the simulated A1, offline: minutes of robot data, updates between episodes.

No ROS: the control node's tick logic (safety, rate limit, soft start, the robot's exploration
noise) drives the MuJoCo A1 directly and every transition goes into an in-memory replay. The first
`--v0-episodes` episodes run the initial policy (action 0 plus its noise); every later episode runs
the agent's current actor at its mean plus the same noise (no trust gate, no canary: this measures
the recipe, not the safety net). After each episode (from the last v0 one on) the agent makes
`--updates-per-episode` updates. Per episode it prints one JSON line: the return, forward distance,
length and fall, and the learner's imagined reward, critic value, action std and actor gradient,
and the critic's value against the real discounted return that followed on the episode's own
windows (`dreamer_core.algorithms.trust.value_check`). The end prints v0's mean against the mean of
the last `--last` episodes.

Usage: python bench/a1_recipe.py [--robot a1_sim_trot] [--preset xs] [--set KEY=VALUE ...]
       [--episodes 20] [--v0-episodes 6] [--updates-per-episode 60] [--last 5] [--amplitude 0.3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
import yaml

from dreamer_core.algorithms.agent import Agent
from dreamer_core.algorithms.trust.value_check import value_against_real_return
from dreamer_core.config import load_agent_config
from dreamer_core.control import Controller, InitialPolicy
from dreamer_core.envs.a1_mujoco import A1MujocoEnv
from dreamer_core.envs.closed_loop import run_episode as run_controller_episode
from dreamer_core.robots.config import load_robot_config
from dreamer_core.runners.online import SequenceReplay

METRICS = ("imag/reward", "imag/value", "imag/action_std", "grad_norm/actor", "loss/reward")


class AgentPolicy:
    """The agent's actor as the controller steps a policy runtime (mean action; the executed action
    is fed back as the next previous action, as PolicyRuntime.executed does on the robot)."""

    version = 1

    def __init__(self, agent: Agent):
        self.agent, self.state = agent, None

    def reset(self) -> None:
        self.state = None

    def step(self, obs, *, explore, is_first=False, rng=None):
        action, self.state = self.agent.policy_step(obs, self.state, is_first=is_first or self.state is None,
                                                    explore=False)
        return action

    def executed(self, action) -> None:
        self.state["prev_action"] = torch.as_tensor(action, device=self.agent.device)[None]


def run_episode(config, env: A1MujocoEnv, policy: AgentPolicy | None, seed: int, replay: SequenceReplay,
                amplitude: float):
    """One episode through the controller; returns (return, forward m, rows, fell, rows as arrays)."""
    env.reset(seed=seed)
    ctrl = Controller(config, session_id="bench", seed=seed,
                      initial_policy=InitialPolicy(config.act_dim, "random", amplitude=amplitude, seed=seed))
    if policy is not None:
        policy.reset()
        ctrl.policy = policy
    start = env.base_position()[0]
    rows = [{"obs": t.obs, "action": t.action, "reward": t.reward, "is_first": t.is_first,
             "is_last": t.is_last, "is_terminal": t.is_terminal} for t in run_controller_episode(ctrl, env)]
    for step in rows:
        replay.add(**step)
    ret = float(sum(r["reward"] for r in rows))
    return ret, float(env.base_position()[0] - start), len(rows), bool(rows[-1]["is_terminal"]), rows


def episode_windows(rows: list[dict], length: int) -> dict[str, np.ndarray]:
    """The episode's consecutive windows of ``length`` rows as a batch [B, T, ...]."""
    count = max(1, len(rows) // length)
    return {key: np.stack([np.stack([np.asarray(r[key]) for r in rows[i * length:(i + 1) * length]])
                           for i in range(count)]) for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", default="a1_sim_trot")
    parser.add_argument("--preset", default="xs")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="preset overrides (YAML values)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--v0-episodes", type=int, default=6)
    parser.add_argument("--updates-per-episode", type=int, default=60)
    parser.add_argument("--last", type=int, default=5, help="episodes averaged at the end")
    parser.add_argument("--amplitude", type=float, default=0.3,
                        help="the robot's exploration noise (initial_policy_amplitude), for v0 and every version")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 0 < args.v0_episodes < args.episodes:
        parser.error("--v0-episodes must be between 0 and --episodes")
    overrides = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    torch.set_num_threads(1)
    config = load_robot_config(args.robot)
    agent_config = load_agent_config(args.preset, overrides)
    agent = Agent(config.obs_dim, config.act_dim, agent_config, seed=args.seed)
    env = A1MujocoEnv(config, seed=args.seed, randomize=True)
    replay = SequenceReplay(config.obs_dim, config.act_dim, args.episodes * (config.episode_steps + 1))
    rng, policy = np.random.default_rng(args.seed), AgentPolicy(agent)
    print(f"# {args.robot}, preset {args.preset} {overrides}, amplitude {args.amplitude}, seed {args.seed}, "
          f"{platform.processor() or platform.machine()}", flush=True)
    start, returns = time.time(), []
    for episode in range(args.episodes):
        learned = episode >= args.v0_episodes
        ret, forward, rows, fell, steps = run_episode(config, env, policy if learned else None,
                                                      args.seed * 1000 + episode, replay, args.amplitude)
        returns.append(ret)
        line = {"episode": episode, "policy": "learned" if learned else "v0", "return": round(ret, 1),
                "forward_m": round(forward, 2), "rows": rows, "fell": fell}
        if episode + 1 >= args.v0_episodes:
            metrics = {}
            for _ in range(args.updates_per_episode):
                metrics = agent.train_step(replay.sample(agent_config.batch_size, agent_config.seq_len, rng))
            value = value_against_real_return(agent, episode_windows(steps, agent_config.seq_len))
            line.update(updates=agent.updates, critic=round(value["critic"], 1),
                        real_return=round(value["real_return"], 1),
                        **{key: round(metrics[key], 4) for key in METRICS if key in metrics})
        line["wall_s"] = round(time.time() - start)
        print(json.dumps(line), flush=True)
    v0 = float(np.mean(returns[:args.v0_episodes]))
    learned = returns[max(args.v0_episodes, len(returns) - args.last):]
    last = float(np.mean(learned))
    print(f"v0 mean {v0:.1f} over {args.v0_episodes} episodes; last {len(learned)} learned episodes {last:.1f} "
          f"= {last / v0:.2f}x; {agent.updates} updates in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
