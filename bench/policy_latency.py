"""Per-tick latency of the onboard policy: PolicyRuntime (onnxruntime) vs the torch eager tick.

Both run one thread, with the recurrent state fed back every tick and the same noise
source (dreamer_core.deploy.runtime.sample_noise). Prints median, p99, p99.9 and max in
microseconds over --ticks ticks per preset, and the onnxruntime speed-up.

    python bench/policy_latency.py [--presets xs s] [--ticks 20000]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import onnxruntime
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tqdm import tqdm

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config
from dreamer_core.deploy import PolicyRuntime, build_bundle
from dreamer_core.deploy.export import export_agent
from dreamer_core.deploy.manifest import INPUT_NAMES
from dreamer_core.deploy.runtime import sample_noise
from dreamer_core.robots.config import load_robot_config

# Targets from issue 5 (p99, microseconds).
P99_TARGET_US = {"xs": 200.0, "s": 1000.0}


def percentiles(ns: np.ndarray) -> dict[str, float]:
    us = ns / 1e3
    return {"median": float(np.median(us)), "p99": float(np.percentile(us, 99)),
            "p99.9": float(np.percentile(us, 99.9)), "max": float(us.max())}


def time_runtime(runtime: PolicyRuntime, observations: np.ndarray, desc: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    times = np.empty(len(observations), np.int64)
    for i in tqdm(range(len(observations)), desc=desc, mininterval=2.0, leave=False):
        start = time.perf_counter_ns()
        runtime.step(observations[i], explore=True, rng=rng)
        times[i] = time.perf_counter_ns() - start
    return times


def time_torch(agent: Agent, observations: np.ndarray, desc: str) -> np.ndarray:
    module = agent.policy_tick().eval()
    state = agent.initial_state(1)
    gumbel = np.zeros(tuple(state["z"].shape), np.float32)
    eps = np.zeros(tuple(state["prev_action"].shape), np.float32)
    rng = np.random.default_rng(0)
    times = np.empty(len(observations), np.int64)
    with torch.inference_mode():
        for i in tqdm(range(len(observations)), desc=desc, mininterval=2.0, leave=False):
            start = time.perf_counter_ns()
            sample_noise(rng, gumbel, eps, explore=True)
            feeds = {"obs": torch.from_numpy(observations[i][None]), **state,
                     "is_first": torch.tensor([float(i == 0)]), "gumbel": torch.from_numpy(gumbel),
                     "eps": torch.from_numpy(eps)}
            action, _, h_next, z_next = module(*(feeds[name] for name in INPUT_NAMES))
            state = {"h": h_next, "z": z_next, "prev_action": action}
            times[i] = time.perf_counter_ns() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["xs", "s"])
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=500, help="untimed ticks before each measurement")
    parser.add_argument("--robot-config", default="a1_sim", help="robot whose observation/action spec is used")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    spec = load_robot_config(args.robot_config).policy_spec()
    key = Ed25519PrivateKey.generate()
    print(f"policy latency: robot {spec.robot_id} (obs {spec.obs_dim}, act {spec.act_dim}), {args.ticks} ticks, "
          f"1 thread; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {platform.processor() or ''}"
          f" {platform.machine()}")
    header = f"{'preset':<6} {'engine':<22} {'median':>8} {'p99':>8} {'p99.9':>8} {'max':>9}   (µs)"
    rows = [header]
    for preset in args.presets:
        agent = Agent(spec.obs_dim, spec.act_dim, load_agent_config(preset), seed=0)
        bundle = build_bundle(export_agent(agent), spec, 1, 0, preset, key)
        runtime = PolicyRuntime.load(bundle, expected_spec=spec, public_key=key.public_key())
        observations = np.random.default_rng(1).normal(size=(args.ticks + args.warmup, spec.obs_dim))
        observations = observations.astype(np.float32)
        results = {}
        for engine, timer, target in (("onnxruntime (runtime)", time_runtime, runtime),
                                      ("torch eager", time_torch, agent)):
            times = timer(target, observations, f"{preset} {engine}")[args.warmup :]
            results[engine] = percentiles(times)
            r = results[engine]
            rows.append(f"{preset:<6} {engine:<22} {r['median']:8.1f} {r['p99']:8.1f} {r['p99.9']:8.1f} "
                        f"{r['max']:9.1f}")
        ort_r, torch_r = results["onnxruntime (runtime)"], results["torch eager"]
        target = P99_TARGET_US.get(preset)
        verdict = f"p99 target {target:.0f} µs: {'met' if ort_r['p99'] <= target else 'MISSED'}" if target else ""
        rows.append(f"{preset:<6} speed-up onnxruntime vs torch: median x{torch_r['median'] / ort_r['median']:.2f}, "
                    f"p99 x{torch_r['p99'] / ort_r['p99']:.2f}; {verdict}; ONNX {len(bundle.onnx) / 2**20:.1f} MiB")
        print(rows[-3], rows[-2], rows[-1], sep="\n", flush=True)
    print("\n".join(["", *rows]))


if __name__ == "__main__":
    main()
