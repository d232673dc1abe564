"""Peak resident memory (RSS) per preset: training and the onboard runtime, each in a fresh process.

    python bench/memory.py                       # presets xs and s
    python bench/memory.py --presets s --ticks 5000

* training: a fresh process builds the agent and runs one update on a random 16×64 batch
  (bench/learner_workload.py: obs 24, act 6, float32, --threads torch threads);
* onboard: a fresh process loads a signed bundle exported from an untrained agent of the preset
  for --robot-config (default a1_sim, the simulated A1's obs/action spec) into PolicyRuntime and
  ticks it --ticks times, as the control node does; that process never imports torch.

Each row gives the RSS after the imports (interpreter + libraries), the peak RSS of the whole
process (VmHWM) and the difference, i.e. what the model and its work add.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

# The measured children import what they need themselves, so that each process holds only its own
# libraries (the onboard child must never load torch); the parent imports torch only to export bundles.
MiB = 2**20


def rss() -> int:
    return psutil.Process().memory_info().rss


def peak_rss() -> int:
    """This process's RSS high-water mark (VmHWM). Not getrusage's ru_maxrss: Linux carries that over
    from the parent across fork + exec, so a child of a big parent would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status; this benchmark needs Linux")


def child_train(preset: str, threads: int) -> dict:
    from learner_workload import our_learner, set_threads

    set_threads(threads)
    after_imports = rss()
    _, step = our_learner(preset)
    step()
    return {"after_imports": after_imports, "peak": peak_rss()}


def child_onboard(bundle_path: str, public_key_path: str, robot_config: str, ticks: int) -> dict:
    import numpy as np

    from dreamer_core.deploy import PolicyRuntime, load_bundle_file, load_public_key
    from dreamer_core.robots.config import load_robot_config

    after_imports = rss()
    spec = load_robot_config(robot_config).policy_spec()
    runtime = PolicyRuntime.load(load_bundle_file(bundle_path), expected_spec=spec,
                                 public_key=load_public_key(public_key_path))
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(ticks, spec.obs_dim)).astype(np.float32)
    for obs in observations:
        runtime.step(obs, explore=True, rng=rng)
    return {"after_imports": after_imports, "peak": peak_rss(), "torch_loaded": "torch" in sys.modules}


def export_bundle(preset: str, robot_config: str, folder: Path) -> tuple[Path, Path]:
    """A signed bundle of an untrained agent of ``preset`` for the robot, and its public key file."""
    from dreamer_core.algorithms.agent import Agent
    from dreamer_core.config import load_agent_config
    from dreamer_core.deploy import build_bundle, generate_keypair, load_private_key, save_bundle_file
    from dreamer_core.deploy.export import export_agent
    from dreamer_core.robots.config import load_robot_config

    spec = load_robot_config(robot_config).policy_spec()
    key_path, public_path = generate_keypair(folder / "keys")
    agent = Agent(spec.obs_dim, spec.act_dim, load_agent_config(preset), seed=0)
    bundle = build_bundle(export_agent(agent), spec, 1, 0, preset, load_private_key(key_path))
    return save_bundle_file(bundle, folder / f"{preset}.bundle"), public_path


def run_child(*args: str) -> dict:
    """Run this script in a fresh interpreter in child mode and return its JSON result."""
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["xs", "s"])
    parser.add_argument("--threads", type=int, default=2, help="torch threads in the training process")
    parser.add_argument("--ticks", type=int, default=2000, help="runtime ticks in the onboard process")
    parser.add_argument("--robot-config", default="a1_sim", help="robot whose obs/action spec the bundle uses")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        result = child_train(rest[0], int(rest[1])) if mode == "train" else child_onboard(*rest[:3], int(rest[3]))
        print(json.dumps(result))
        return

    print(f"{'preset':<7}{'process':<46}{'after imports':>14}{'peak RSS':>10}{'model+work':>12}   (MiB)")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            bundle, public_key = export_bundle(preset, args.robot_config, Path(tmp) / preset)
            rows = [
                (f"training (agent + one 16x64 update, {args.threads} thr)",
                 run_child("train", preset, str(args.threads))),
                (f"onboard (PolicyRuntime, {args.robot_config}, {args.ticks} ticks)",
                 run_child("onboard", str(bundle), str(public_key), args.robot_config, str(args.ticks))),
            ]
            for name, r in rows:
                note = "  (torch loaded!)" if r.get("torch_loaded") else ""
                print(f"{preset:<7}{name:<46}{r['after_imports'] / MiB:>14.1f}{r['peak'] / MiB:>10.1f}"
                      f"{(r['peak'] - r['after_imports']) / MiB:>12.1f}{note}", flush=True)


if __name__ == "__main__":
    main()
