"""Real return against robot-minutes on the simulated A1, the simulator paced to the learner.

Starts the sim stack (`dreamer-stack sim`) with `sim_robot` in paced mode (each episode starts only once the learner
has made the updates its train ratio allows for the data so far: docs/nodes.md#sim_robot), runs
until the replay store holds the robot-time budget, stops the stack and prints
  - the real return of the complete episodes per robot-minute (recorded steps / control rate),
    with the policy versions that ran them and how many episodes were cut short (a stop, a fault
    hold, a swap: dreamer_core.report.complete_episodes; never averaged),
  - the initial policy's return: the version-0 episodes of the same run,
  - every gate decision of the learner (version, promoted or held back, why) and the robot's
    verdicts (canary passed, rolled back),
  - the wall time, the learner's updates and the time the robot waited for the learner,
  - the run's summary line (dreamer_core.report.run_summary: v0's mean return, the mean over the
    last 2 robot-minutes, forward distance per episode, falls, promotions, rollbacks, wall time)
    and its verdict line, the one `dreamer-report` prints.
With `--seeds N` it does this N times, one run per seed (`--first-seed`, then +1 each: the seed of
sim_robot, control_node and learner_node), and ends with the table of the N summaries and how many
seeds' last-2-minutes mean reached 1.1x v0's. Each run directory (RUN_DIR/seed-S) keeps everything
(`dreamer-report RUN_DIR/seed-S` redraws the report).

A CPU learner makes far fewer updates per second than a robot makes steps at 512 train ratio,
so the budget and train ratio decide the wall time: updates ≈ train_ratio · steps / (16 · 64).
Defaults: 5 robot-minutes (15,000 steps at 50 Hz) at train ratio 64 = 937 `xs` updates.

Usage: python bench/a1_learning.py [--robot-minutes 5] [--train-ratio 64] [--preset xs] [--seeds 1] [--amplitude 0.3]
       [--first-seed 0] [--preset-set KEY=VALUE ...] [--trust-set KEY=VALUE ...]
       [--run-dir DIR] [--keys-dir runs/keys] [--ros-domain-id 120] [--wall-limit-minutes 90]
`--preset-set disagreement_penalty=1.0` or `--trust-set horizon=skill` compare a variant with the
defaults on the same budget (values are YAML: numbers, words, null).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from dreamer_core.config import load_agent_config
from dreamer_core.deploy import PolicyRuntime, generate_keypair, load_public_key
from dreamer_core.deploy.bundle import load_bundle_file
from dreamer_core.deploy.keys import PUBLIC_KEY_NAME
from dreamer_core.envs.closed_loop import outcomes
from dreamer_core.report.robot_time import return_by_robot_minute, robot_minutes_at_end
from dreamer_core.report.run_data import RunData, load_run
from dreamer_core.report.run_layout import RunLayout
from dreamer_core.report.run_summary import SUMMARY_HEADER, RunSummary, seeds_line, summarize_run, summary_row
from dreamer_core.robots.config import TrustConfig, load_robot_config, resolve_config_path
from dreamer_core.runners.learner import REJECTED_SUFFIX
from dreamer_core.storage import ReplayStore, ReplayStoreError

REPO = Path(__file__).resolve().parents[1]
# A loaded machine delivers sensor readings late; the default 3 periods would end many episodes as
# stale_sensor faults (as in tests/integration/stack_harness.py). A dead sensor still trips it in 0.3 s.
STALE_SENSOR_PERIODS = 15
POLL_S = 10.0
# Seeds of the episodes a rollback is replayed on (both versions see the same ones), apart from the runs' seeds.
ROLLBACK_CHECK_SEED = 10_000


def write_inputs(args, run_dir: Path, seed: int) -> tuple[Path, Path, Path]:
    """The bench's preset (train ratio), robot config (watchdog slack) and params file (pacing, seeds)."""
    inputs = run_dir.parent / f"{run_dir.name}-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    overrides = {**args.preset_set, "train_ratio": args.train_ratio}
    preset = load_agent_config(args.preset, overrides).model_dump(mode="json")
    preset_path = inputs / "preset.yaml"
    preset_path.write_text(yaml.safe_dump(preset))
    robot = yaml.safe_load(resolve_config_path(args.robot).read_text())
    robot["safety"]["stale_sensor_periods"] = STALE_SENSOR_PERIODS
    robot["trust"] = TrustConfig(**{**robot.get("trust", {}), **args.trust_set}).model_dump(mode="json")
    robot_path = inputs / "robot.yaml"
    robot_path.write_text(yaml.safe_dump(robot, sort_keys=False))
    params = {
        "sim_robot": {"ros__parameters": {"paced": True, "paced_max_updates_owed": args.max_updates_owed,
                                          "seed": seed}},
        "control_node": {"ros__parameters": {"seed": seed, "initial_policy_amplitude": args.amplitude}},
        # nice 0: on a shared machine a niced learner only sets the wall time (pacing keeps the curve).
        "learner_node": {"ros__parameters": {"nice": 0, "min_steps": args.min_steps, "seed": seed}},
    }
    params_path = inputs / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    return preset_path, robot_path, params_path


def key_values(pairs: list[str], option: str) -> dict:
    """``KEY=VALUE`` options as a dict, each value read as YAML."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{option} {pair!r}: expected KEY=VALUE, e.g. {option} disagreement_penalty=1.0")
        out[key] = yaml.safe_load(value)
    return out


def stored_steps(replay: Path) -> int:
    try:
        with ReplayStore(replay, readonly=True) as store:
            return store.num_steps
    except (OSError, ReplayStoreError):  # not created yet
        return 0


def run_stack(args, run_dir: Path, preset: Path, robot: Path, params: Path, budget_steps: int) -> float:
    """Run the paced sim stack until the store holds ``budget_steps``; the wall seconds it took."""
    keys = args.keys_dir
    if not (keys / "policy_signing.key").is_file():
        generate_keypair(keys)
    cmd = [sys.executable, "-m", "dreamer_ros.stack_launcher", "sim", "--run-dir", str(run_dir), "--robot", str(robot),
           "--preset", str(preset), "--params-file", str(params), "--keys-dir", str(keys),
           "--minutes", str(args.wall_limit_minutes)]
    # A domain of its own: another stack on this machine (a demo, a test) must not talk to this one.
    env = {**os.environ, "ROS_DOMAIN_ID": str(args.ros_domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    start = time.monotonic()
    with open(run_dir.parent / f"{run_dir.name}-stack.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        with tqdm(total=budget_steps, desc="robot steps", unit="step", mininterval=POLL_S) as bar:
            while proc.poll() is None:
                steps = stored_steps(run_dir / "replay")
                bar.update(min(steps, budget_steps) - bar.n)
                if steps >= budget_steps:
                    break
                time.sleep(POLL_S)
        wall = time.monotonic() - start
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # dreamer-stack stops the nodes cleanly and writes the report
            proc.wait(timeout=300)
        elif steps < budget_steps:
            print(f"warning: the stack stopped after {wall / 60:.1f} min with {steps} of {budget_steps} steps "
                  f"(rc {proc.returncode}; --wall-limit-minutes or see {log.name})", file=sys.stderr)
    return wall


def learner_progress(run_dir: Path) -> dict[str, str]:
    """The last learner_node and sim_robot diagnostics dreamer-stack recorded."""
    path = run_dir / "launcher" / "diagnostics.jsonl"
    last: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                nodes = json.loads(line)["nodes"]
            except (json.JSONDecodeError, KeyError):
                continue
            for name in ("learner_node", "sim_robot"):
                last.update({f"{name}.{k}": v for k, v in nodes.get(name, {}).items()})
    return last


def print_run(data: RunData, args, rate: float, wall: float) -> None:
    """The run's return per robot-minute, v0 against the learned versions, decisions and verdicts."""
    episodes = sorted(data.episodes, key=lambda e: e.end_stamp)
    ends = robot_minutes_at_end(episodes, rate)
    within = [e for e, end in zip(episodes, ends, strict=True) if end <= args.robot_minutes + 1e-9]
    complete = [e for e in within if data.is_complete(e)]
    print(f"\nwall time {wall / 60:.1f} min for {args.robot_minutes:g} robot-minutes; {len(complete)} complete and "
          f"{len(within) - len(complete)} cut episodes within the budget ({len(episodes)} ended in all)")
    print("\nrobot-minutes | episodes | mean return | min | max | cut | versions")
    for b in return_by_robot_minute(within, rate, args.bin_minutes, is_complete=data.is_complete):
        if b.returns:
            versions = ",".join(f"v{v}" for v in sorted(set(b.versions)))
            print(f"{b.start_min:5.1f}-{b.end_min:<5.1f} | {len(b.returns):8d} | {b.mean_return:11.1f} | "
                  f"{min(b.returns):5.1f} | {max(b.returns):5.1f} | {b.cut:3d} | {versions}")
        else:
            print(f"{b.start_min:5.1f}-{b.end_min:<5.1f} | {0:8d} | {'':11} | {'':5} | {'':5} | {b.cut:3d} |")
    for label, group in (("initial policy (v0)", [e for e in complete if e.policy_version == 0]),
                         ("learned (v>=1)", [e for e in complete if e.policy_version > 0])):
        returns = np.array([e.ret for e in group])
        text = f"{returns.mean():.1f} ± {returns.std():.1f} over {len(returns)} episodes" if len(returns) else "none"
        print(f"{label}: mean return {text}")
    print("\nlearner decisions:")
    for d in data.decisions or []:
        print(f"  v{d.version} at update {d.update}: {'promoted' if d.promoted else 'held back'}: {d.summary}")
    if not data.decisions:
        print("  none")
    print("robot verdicts:")
    for e in data.events:
        print(f"  v{e.version} {e.event}: {e.reason}")
    if not data.events:
        print("  none")
    last = learner_progress(data.layout.root)
    print(f"\nlearner updates {last.get('learner_node.updates', '?')}, updates owed at the end "
          f"{last.get('learner_node.updates_owed', '?')}; robot waited for the learner "
          f"{last.get('sim_robot.paced_waited_s', '?')} s (completed waits)")
    if data.notes:
        print(f"missing sources: {data.notes}")


def bundle_path(run_dir: Path, version: int) -> Path:
    """A version's bundle file in the run's learner folder (a version the robot rejected carries .rejected)."""
    path = RunLayout(run_dir).bundles / f"policy_v{version:04d}.bundle"
    return path if path.is_file() else path.with_name(path.name + REJECTED_SUFFIX)


def rollback_checks(run_dir: Path, keys_dir: Path, amplitude: float, episodes: int) -> list[tuple[int, bool]]:
    """Replay each rolled-back version and the version its canary was judged against for ``episodes``
    episodes each on the simulated A1 (the run's robot config, the same seeds for both): was the
    rolled-back one in fact better? Prints a line per rollback; returns (version, it was better)."""
    data = load_run(run_dir)
    config = load_robot_config(run_dir.parent / f"{run_dir.name}-inputs" / "robot.yaml")
    public_key = load_public_key(keys_dir / PUBLIC_KEY_NAME)
    results = []
    for event in (e for e in data.events if e.event == "rolled_back" and e.baseline_version is not None):
        means = {}
        for version in (event.version, event.baseline_version):
            policy = None
            if version > 0:
                bundle = load_bundle_file(bundle_path(run_dir, version))
                policy = PolicyRuntime.load(bundle, expected_spec=config.policy_spec(), public_key=public_key)
            runs = outcomes(config, policy, episodes=episodes, seed=ROLLBACK_CHECK_SEED, amplitude=amplitude)
            means[version] = (float(np.mean([r.ret for r in runs])), sum(r.fell for r in runs))
        (mean, falls), (base_mean, base_falls) = means[event.version], means[event.baseline_version]
        better = mean > base_mean
        print(f"rollback check: v{event.version} (rolled back, judged against v{event.baseline_version}) replayed "
              f"{episodes} episodes each on the sim, same seeds: mean return {mean:.1f} ({falls} falls) vs "
              f"{base_mean:.1f} ({base_falls} falls): v{event.version} was {'BETTER' if better else 'worse'}")
        results.append((event.version, better))
    return results


def run_seed(args, seed: int, run_dir: Path, rate: float, budget_steps: int) -> RunSummary:
    """One bench run with ``seed``: run the stack, print what it did and its summary."""
    print(f"\n=== seed {seed}: run directory {run_dir}")
    preset, robot, params = write_inputs(args, run_dir, seed)
    wall = run_stack(args, run_dir, preset, robot, params, budget_steps)
    data = load_run(run_dir)
    print_run(data, args, rate, wall)
    summary = summarize_run(data, seed=seed, budget_minutes=args.robot_minutes, wall_s=wall)
    print(f"\n{SUMMARY_HEADER}\n{summary_row(summary)}\n{summary.verdict}")
    better = [v for v, was_better in rollback_checks(run_dir, args.keys_dir, args.amplitude, args.check_episodes)
              if was_better]
    print(f"rollbacks of a version that was in fact better than its baseline: {len(better)}"
          f"{' (v' + ', v'.join(map(str, better)) + ')' if better else ''}")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot-minutes", type=float, default=5.0, help="robot-time budget (default 5)")
    parser.add_argument("--seeds", type=int, default=1, help="runs, one per seed (default 1)")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first run; the next ones +1 each")
    parser.add_argument("--train-ratio", type=float, default=64.0, help="replayed per collected step (default 64)")
    parser.add_argument("--preset", default="xs")
    parser.add_argument("--robot", default="a1_sim")
    parser.add_argument("--amplitude", type=float, default=0.3,
                        help="the robot's exploration noise, control_node initial_policy_amplitude (default 0.3; "
                             "a1_sim_trot with preset a1_trot: 0.8)")
    parser.add_argument("--min-steps", type=int, default=1000, help="real steps before the first update")
    parser.add_argument("--max-updates-owed", type=int, default=0, help="sim_robot paced_max_updates_owed")
    parser.add_argument("--bin-minutes", type=float, default=1.0)
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="new directory for the runs, one RUN_DIR/seed-S each (default runs/a1_learning-<time>)")
    parser.add_argument("--keys-dir", type=Path, default=REPO / "runs" / "keys")
    parser.add_argument("--ros-domain-id", type=int, default=120,
                        help="ROS_DOMAIN_ID of the run (default 120: below the tests' 150..232), discovery localhost")
    parser.add_argument("--wall-limit-minutes", type=float, default=90.0, help="stop each run's stack after this long")
    parser.add_argument("--preset-set", action="append", default=[], metavar="KEY=VALUE",
                        help="preset key for this run, e.g. disagreement_penalty=1.0 (repeatable)")
    parser.add_argument("--check-episodes", type=int, default=8,
                        help="episodes per version when a rollback is replayed on the sim (default 8)")
    parser.add_argument("--check-rollbacks", type=Path, nargs="+", metavar="SEED_RUN_DIR",
                        help="only replay the rollbacks of these finished runs (RUN_DIR/seed-S) and say whether "
                             "each rolled-back version was in fact worse; --amplitude as in the run")
    parser.add_argument("--trust-set", action="append", default=[], metavar="KEY=VALUE",
                        help="robot config trust key for this run, e.g. horizon=skill (repeatable)")
    args = parser.parse_args()
    args.preset_set = key_values(args.preset_set, "--preset-set")
    args.trust_set = key_values(args.trust_set, "--trust-set")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.check_rollbacks:
        for run_dir in args.check_rollbacks:
            print(f"=== {run_dir}")
            rollback_checks(run_dir, args.keys_dir, args.amplitude, args.check_episodes)
        return 0

    base = args.run_dir or REPO / "runs" / f"a1_learning-{datetime.now():%Y%m%d-%H%M%S}"
    if base.exists():
        parser.error(f"--run-dir {base} exists; give a new directory")
    rate = load_robot_config(args.robot).control_rate_hz
    budget_steps = round(args.robot_minutes * 60 * rate)
    try:
        agent = load_agent_config(args.preset, args.preset_set)
        TrustConfig(**args.trust_set)
    except ValueError as exc:  # a --preset-set or --trust-set the configs refuse
        parser.error(str(exc))
    updates = int(args.train_ratio * budget_steps / (agent.batch_size * agent.seq_len))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"budget {args.robot_minutes:g} robot-minutes = {budget_steps} steps at {rate:g} Hz; train ratio "
          f"{args.train_ratio:g} ({args.preset}, {agent.batch_size}x{agent.seq_len}): about {updates} updates; "
          f"seeds {', '.join(map(str, seeds))}; runs in {base}")
    summaries = [run_seed(args, seed, base / f"seed-{seed}", rate, budget_steps) for seed in seeds]
    print(f"\n=== {len(summaries)} seed(s)\n{SUMMARY_HEADER}")
    for summary in summaries:
        print(summary_row(summary))
    print(seeds_line(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
