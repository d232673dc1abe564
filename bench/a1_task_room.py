"""How much room a task leaves above its initial policy: open-loop gaits on the simulated A1.

Runs, through the control node's tick logic (safety, rate limit, soft start) on the MuJoCo A1 with
domain randomisation and the initial policy's exploration noise, a set of open-loop trots of
rising amplitude (action 0 of `action.kind: base_gait`) and standing still, under the robot
config's reward and under the same reward with threshold gates, at the control rates given.
Prints per row: mean return, forward distance per episode (m), falls. A task a learner can improve
has gaits scoring clearly above its initial policy (and no fall cliff right next to it); with
product gates standing still is a strong local optimum (docs/simulation.md#the-walking-task).

Usage: python bench/a1_task_room.py [--robot a1_sim] [--rates 20 50] [--episodes 2] [--threshold 0.5]
"""

from __future__ import annotations

import argparse
import copy
import platform

import numpy as np
import yaml

from dreamer_core.envs.closed_loop import outcomes
from dreamer_core.robots.config import parse_robot_config, resolve_config_path

# (frequency Hz, thigh amplitude rad, knee lift rad); (0, 0, 0) = standing still.
GAITS = [(0.0, 0.0, 0.0), (2.0, 0.1, 0.2), (2.0, 0.2, 0.3), (3.0, 0.1, 0.2), (3.0, 0.2, 0.2), (3.0, 0.2, 0.4),
         (3.0, 0.3, 0.4)]
# A trot: diagonal legs together, each knee lifting a quarter cycle after its thigh swings.
LEG_PHASES = {"FR": 0.0, "FL": 0.5, "RR": 0.5, "RL": 0.0}


def trot(frequency: float, thigh: float, knee: float) -> dict:
    joints = []
    for leg, phase in LEG_PHASES.items():
        joints.append({"name": f"{leg}_upper_joint", "amplitude": thigh, "phase": phase})
        joints.append({"name": f"{leg}_lower_joint", "amplitude": -knee, "phase": (phase + 0.75) % 1.0,
                       "rectified": True})
    return {"frequency_hz": frequency, "joints": joints}


def variant(base: dict, rate: float, gait: tuple[float, float, float], threshold: float | None) -> dict:
    data = copy.deepcopy(base)
    data["control_rate_hz"] = rate
    observation = [t for t in data["observation"] if t["name"] != "gait_phase"]
    if gait[0] > 0:
        data["action"].update(kind="base_gait", gait=trot(*gait))
        observation.append({"name": "gait_phase"})
    else:
        data["action"].update(kind="joint_position_offset")
        data["action"].pop("gait", None)
    data["observation"] = observation
    for term in data["reward"]["terms"]:
        term.pop("gate_threshold", None)
        if threshold is not None and term.get("gate"):
            term["gate_threshold"] = threshold
    return data


def run(data: dict, episodes: int, seed: int) -> tuple[float, float, int]:
    """(mean return, mean forward distance, falls) of the initial policy (action 0 plus its noise)."""
    results = outcomes(parse_robot_config(data), None, episodes=episodes, seed=seed, amplitude=0.3)
    return (float(np.mean([r.ret for r in results])), float(np.mean([r.forward_m for r in results])),
            sum(r.fell for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", default="a1_sim")
    parser.add_argument("--rates", type=float, nargs="+", default=[20.0, 50.0])
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.5, help="gate threshold of the threshold variant")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    base = yaml.safe_load(resolve_config_path(args.robot).read_text())
    machine = platform.processor() or platform.machine()
    print(f"# {args.robot}, {args.episodes} episodes per row, seed {args.seed}, {machine}")
    print(f"{'rate Hz':>7} {'gates':>9} {'gait (Hz, thigh, knee)':>24} {'return':>8} {'forward m':>9} {'falls':>5}")
    for rate in args.rates:
        for threshold in (None, args.threshold):
            for gait in GAITS:
                mean, forward, falls = run(variant(base, rate, gait, threshold), args.episodes, args.seed)
                label = "stand" if gait[0] == 0 else f"{gait[0]:g}, {gait[1]:g}, {gait[2]:g}"
                gates = "product" if threshold is None else f">= {threshold:g}"
                print(f"{rate:7g} {gates:>9} {label:>24} {mean:8.1f} {forward:9.2f} {falls:5d}", flush=True)


if __name__ == "__main__":
    main()
