"""Learner throughput per preset: gradient updates/s and imagined states/s (not a test).

    python bench/train_throughput.py                     # xs and s on CPU (and CUDA when present)
    python bench/train_throughput.py --presets xs s m --updates 5 --threads 2 --compile

An update is one world-model step on a B×T batch plus one actor-critic step imagining H steps
from every one of the B·T posterior states, so imagined states/s = updates/s · B·T·H.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config


def synthetic_batch(batch: int, length: int, obs_dim: int, act_dim: int, seed: int = 0) -> dict:
    """A well-formed random batch (throughput does not depend on the values)."""
    rng = np.random.default_rng(seed)
    flags = np.zeros((batch, length), bool)
    flags[:, 0] = True
    return {"obs": rng.normal(size=(batch, length, obs_dim)).astype(np.float32),
            "action": rng.uniform(-1, 1, (batch, length, act_dim)).astype(np.float32),
            "reward": rng.normal(size=(batch, length)).astype(np.float32),
            "is_first": flags, "is_last": np.zeros_like(flags), "is_terminal": np.zeros_like(flags)}


def measure(preset: str, device: str, updates: int, warmup: int, compile_: bool, obs_dim: int, act_dim: int,
            batch: int, length: int, horizon: int) -> dict:
    """Time ``updates`` train steps after ``warmup`` untimed ones."""
    config = load_agent_config(preset, {"batch_size": batch, "seq_len": length, "horizon": horizon,
                                        "compile": compile_})
    agent = Agent(obs_dim, act_dim, config, device=device)
    data = synthetic_batch(batch, length, obs_dim, act_dim)
    for _ in range(warmup):
        agent.train_step(data)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(updates):
        agent.train_step(data)
    if device == "cuda":
        torch.cuda.synchronize()
    rate = updates / (time.perf_counter() - start)
    return {"preset": preset, "device": device, "compile": compile_, "updates_per_s": rate,
            "imagined_states_per_s": rate * batch * length * horizon,
            "params_M": sum(p.numel() for p in agent.parameters()) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["xs", "s"])
    parser.add_argument("--updates", type=int, default=5, help="timed updates per preset")
    parser.add_argument("--warmup", type=int, default=2, help="untimed updates first (compile, allocator)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--compile", action="store_true", help="also measure with torch.compile")
    parser.add_argument("--obs-dim", type=int, default=24)
    parser.add_argument("--act-dim", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--horizon", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"# {platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"B={args.batch} T={args.length} H={args.horizon}, obs {args.obs_dim}, act {args.act_dim}")
    print(f"{'preset':<7}{'device':<7}{'compile':<9}{'params(M)':>10}{'updates/s':>11}{'imagined/s':>12}")
    for device in devices:
        for preset in args.presets:
            for compile_ in [False, True] if args.compile else [False]:
                r = measure(preset, device, args.updates, args.warmup, compile_, args.obs_dim, args.act_dim,
                            args.batch, args.length, args.horizon)
                print(f"{r['preset']:<7}{r['device']:<7}{r['compile']!s:<9}{r['params_M']:>10.2f}"
                      f"{r['updates_per_s']:>11.3f}{r['imagined_states_per_s']:>12.0f}", flush=True)


if __name__ == "__main__":
    main()
