"""Real-time factor of the simulated A1 (MuJoCo) on one core.

Prints the real-time factor (simulated seconds per second) of the following, both per
wall-clock second and per CPU second of this (single-threaded) process; on a shared
machine the CPU-time figure is the one-core speed, the wall figure what you got:
  physics   - PD physics only, holding the default pose (apply_joint_targets)
  env       - full env.step: ActionMapper + physics + signals + observation + reward,
              random actions, resets on episode end
  env+dr    - the same with domain randomisation (friction, mass, action latency)
Usage: python bench/sim_speed.py [--config a1_sim] [--seconds 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from dreamer_core.envs.a1_mujoco import A1MujocoEnv
from dreamer_core.robots import load_robot_config


def physics_rtf(env: A1MujocoEnv, seconds: float) -> tuple[float, float]:
    """(wall, cpu) real-time factors of PD physics holding the default pose."""
    env.reset()
    default = np.array([j.default for j in env.config.joints])
    ticks = round(seconds / env.dt)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(ticks):
        env.apply_joint_targets(default)
    simulated = ticks * env.dt
    return simulated / (time.perf_counter() - wall), simulated / (time.process_time() - cpu)


def env_rtf(env: A1MujocoEnv, seconds: float, rng: np.random.Generator) -> tuple[float, float]:
    """(wall, cpu) real-time factors of env.step under random actions."""
    env.reset()
    ticks = round(seconds / env.dt)
    actions = rng.uniform(-1.0, 1.0, size=(ticks, env.config.act_dim))
    wall, cpu = time.perf_counter(), time.process_time()
    for action in actions:
        if env.step(action)["is_last"]:
            env.reset()
    simulated = ticks * env.dt
    return simulated / (time.perf_counter() - wall), simulated / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="a1_sim")
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = load_robot_config(args.config)
    print(f"config={args.config} physics={config.low_level_rate_hz:g} Hz "
          f"control={config.control_rate_hz:g} Hz sim_seconds={args.seconds:g} repeats={args.repeats} "
          f"machine={platform.machine()} threads=1 load_avg_1min={os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(0)
    rows = {"physics": [], "env": [], "env+dr": []}
    plain, randomized = A1MujocoEnv(config, seed=0), A1MujocoEnv(config, seed=0, randomize=True)
    for _ in range(args.repeats):
        rows["physics"].append(physics_rtf(plain, args.seconds))
        rows["env"].append(env_rtf(plain, args.seconds, rng))
        rows["env+dr"].append(env_rtf(randomized, args.seconds, rng))
    for name, values in rows.items():
        wall = np.median([w for w, _ in values])
        cpu = np.median([c for _, c in values])
        print(f"{name:8s} real-time factor (median): wall {wall:6.1f}x  cpu {cpu:6.1f}x  "
              f"= {cpu / config.dt:,.0f} control steps per CPU second")
    target = 50.0
    cpu_env = np.median([c for _, c in rows["env"]])
    verdict = "meets" if cpu_env >= target else "MISSES"
    print(f"target >= {target:g}x on one core for the full env step: {verdict}")


if __name__ == "__main__":
    main()
