"""Onboard tick options: onnxruntime optimisation level, a saved optimised model, int8 weights, and a
learner training alongside (not a test).

    python bench/onboard_tick.py                       # presets xs and s, idle machine
    python bench/onboard_tick.py --learner s           # the same while an `s` learner trains alongside

For each preset it exports an untrained agent for the robot spec (a1_sim: obs 46, act 12) and steps
``PolicyRuntime`` (the control node's call: input checks, noise, IOBinding run, state swap) on one
thread with the state fed back, for sessions built

* at each graph optimisation level (``disable``, ``basic``, ``extended``, ``all``; the runtime uses
  ``all``) — the session build time and tick latency per level;
* from the optimised model onnxruntime saved at level ``all`` (``optimized_model_filepath``), to see
  whether caching it would shorten a policy swap;
* from a dynamically quantised copy (int8 weights, ``onnxruntime.quantization.quantize_dynamic``),
  with its largest action difference to the float32 tick over the timed ticks (exploration noise
  off, so the difference is the quantisation's alone).

``--learner PRESET`` starts a separate process that trains that preset on random batches (2 torch
threads) for the whole measurement, as the offboard learner would on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from learner_workload import load_average, machine
from onnxruntime.quantization import QuantType, quantize_dynamic

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config
from dreamer_core.deploy import PolicyRuntime, build_bundle
from dreamer_core.deploy.bundle import authenticate
from dreamer_core.deploy.export import export_agent
from dreamer_core.deploy.runtime import open_session
from dreamer_core.robots.config import load_robot_config

LEVELS = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
LEARNER_LOOP = """
import sys
sys.path.insert(0, {bench!r})
from learner_workload import our_learner, set_threads
set_threads(2)
_, update = our_learner({preset!r})
while True:
    update()
"""


def session(model: bytes, level: str, save_to: Path | None = None) -> ort.InferenceSession:
    """A session with the runtime's thread settings at ``level`` (optionally saving the optimised model)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = LEVELS[level]
    options.log_severity_level = 3
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def timed_build(build) -> tuple[object, float]:
    """The built object and the median build time in ms over 3 builds."""
    times, built = [], None
    for _ in range(3):
        start = time.perf_counter()
        built = build()
        times.append((time.perf_counter() - start) * 1e3)
    return built, statistics.median(times)


def tick_times(runtime: PolicyRuntime, observations: np.ndarray, warmup: int) -> np.ndarray:
    """Per-tick µs after ``warmup`` ticks (exploring, state fed back)."""
    rng = np.random.default_rng(0)
    times = np.empty(len(observations))
    for i, obs in enumerate(observations):
        start = time.perf_counter_ns()
        runtime.step(obs, explore=True, rng=rng)
        times[i] = (time.perf_counter_ns() - start) / 1e3
    return times[warmup:]


def one_tick_difference(reference: ort.InferenceSession, other: ort.InferenceSession, manifest, stoch: int,
                        classes: int, count: int = 1000) -> float:
    """Largest |action_mean| difference of two sessions over ``count`` identical random tick inputs
    (states drawn like a running filter's: h in (−1, 1), one-hot z), i.e. one tick's error, not a
    diverged closed loop."""
    rng = np.random.default_rng(2)
    shapes = manifest.dims.input_shapes()
    worst = 0.0
    for _ in range(count):
        feeds = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
        feeds["obs"] = rng.normal(0.0, 1.0, size=shapes["obs"]).astype(np.float32)
        feeds["h"] = np.tanh(feeds["h"])
        feeds["z"] = np.eye(classes, dtype=np.float32)[rng.integers(classes, size=stoch)].reshape(shapes["z"])
        feeds["prev_action"] = np.clip(feeds["prev_action"], -1, 1)
        feeds["is_first"] = np.zeros(shapes["is_first"], np.float32)
        feeds["eps"] = np.zeros(shapes["eps"], np.float32)
        mean = [s.run(["action_mean"], feeds)[0] for s in (reference, other)]
        worst = max(worst, float(np.abs(mean[0] - mean[1]).max()))
    return worst


def row(preset: str, variant: str, build_ms: float, times: np.ndarray, note: str = "") -> str:
    p = np.percentile(times, [50, 99, 99.9])
    return (f"{preset:<4} {variant:<26} {build_ms:9.1f} {p[0]:9.1f} {p[1]:9.1f} {p[2]:9.1f} {times.max():9.1f}  "
            f"{note}")


def measure(preset: str, spec, key: Ed25519PrivateKey, ticks: int, warmup: int) -> None:
    """Print one row per session variant for ``preset`` (an untrained agent exported for ``spec``)."""
    agent = Agent(spec.obs_dim, spec.act_dim, load_agent_config(preset), seed=0)
    bundle = build_bundle(export_agent(agent), spec, 1, 0, preset, key)
    manifest = authenticate(bundle, key.public_key())
    observations = np.random.default_rng(1).normal(size=(ticks + warmup, spec.obs_dim)).astype(np.float32)

    def latency(sess: ort.InferenceSession) -> np.ndarray:
        return tick_times(PolicyRuntime(sess, manifest, spec), observations, warmup)

    with tempfile.TemporaryDirectory() as folder:
        saved, quantised, original = (Path(folder) / name for name in ("optimised.onnx", "int8.onnx", "float.onnx"))
        session(bundle.onnx, "all", saved)
        original.write_bytes(bundle.onnx)
        quantize_dynamic(original, quantised, weight_type=QuantType.QInt8)
        for level in LEVELS:
            sess, build = timed_build(lambda level=level: session(bundle.onnx, level))
            print(row(preset, f"level {level}", build, latency(sess)), flush=True)
        sess, build = timed_build(lambda: open_session(bundle.onnx))
        print(row(preset, "runtime (open_session)", build, latency(sess)), flush=True)
        sess, build = timed_build(lambda: session(saved.read_bytes(), "disable"))
        print(row(preset, "saved optimised model", build, latency(sess)), flush=True)
        sess, build = timed_build(lambda: session(quantised.read_bytes(), "all"))
        diff = one_tick_difference(open_session(bundle.onnx), sess, manifest, agent.config.stoch, agent.config.classes)
        print(row(preset, "int8 weights (dynamic)", build, latency(sess),
                  f"max |action mean − float32| {diff:.3g} (one tick, 1000 states); "
                  f"{quantised.stat().st_size / 2**20:.1f} vs {len(bundle.onnx) / 2**20:.1f} MiB"), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["xs", "s"])
    parser.add_argument("--ticks", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--learner", help="preset of a learner to train alongside (default: none, idle)")
    args = parser.parse_args()
    learner = None
    if args.learner:
        code = LEARNER_LOOP.format(bench=str(Path(__file__).parent), preset=args.learner)
        learner = subprocess.Popen([sys.executable, "-c", code])
        time.sleep(20.0)  # past its imports and first update
    try:
        spec = load_robot_config("a1_sim").policy_spec()
        key = Ed25519PrivateKey.generate()
        print(f"# {machine()}, onnxruntime {ort.__version__}, 1 thread, robot {spec.robot_id} (obs {spec.obs_dim}, "
              f"act {spec.act_dim}), {args.ticks} ticks after {args.warmup} warm-up, learner alongside: "
              f"{args.learner or 'none'}, load average {load_average()}")
        print(f"{'pre':<4} {'session':<26} {'build ms':>9} {'median':>9} {'p99':>9} {'p99.9':>9} {'max':>9}  (µs)")
        for preset in args.presets:
            measure(preset, spec, key, args.ticks, args.warmup)
        print(f"# load average at the end {load_average()}")
    finally:
        if learner is not None:
            learner.kill()
            learner.wait()


if __name__ == "__main__":
    main()
