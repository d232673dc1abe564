"""Learner speed side by side: NM512/dreamerv3-torch, NM512/r2dreamer and this project, one process.

Each learner runs its *own* training step on the same workload (B = 16 × T = 64, imagination
horizon 15, vector obs 24, 6 continuous actions, DMC-proprio sizes, float32, torch eager, random
batches): dreamerv3-torch's ``Dreamer._train`` with its ``dmc_proprio`` config, r2dreamer's
``Dreamer.update`` with its ``size12M`` model and ``dmc_proprio`` env config (its fp16 autocast
off unless --r2dreamer-fp16), ours ``Agent.train_step`` with preset ``s``. Every learner gets one
warm-up update, then each round times --updates updates per learner, learners interleaved (the
order reverses each round) so that load on a shared machine affects them alike. Prints s/update
(median of all timed updates, and per round), process CPU s/update (both threads together; the
steadier figure on a shared machine) and updates/s relative to dreamerv3-torch for each.

The peers are not part of this repository. Check out the measured commits outside it:
NM512/dreamerv3-torch at 6ef8646 into ../peers/dreamerv3-torch and NM512/r2dreamer at 546e4fa
into ../peers/r2dreamer (both public repositories on GitHub).

Their extra Python packages go into a separate venv that sees the main one's torch (link it
before installing, or pip pulls a second torch; docs/learner.md):

    python3 -m venv .venv-peers
    .venv/bin/python -c "import site; print(site.getsitepackages()[0])" \\
        > "$(.venv-peers/bin/python -c 'import site; print(site.getsitepackages()[0])')/main-venv.pth"
    .venv-peers/bin/pip install -r bench/requirements-peers.txt
    .venv-peers/bin/pip install --no-deps -e .
    .venv-peers/bin/python bench/side_by_side.py \\
        --dreamerv3-torch ../peers/dreamerv3-torch --r2dreamer ../peers/r2dreamer
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from learner_workload import ACT_DIM, BATCH, HORIZON, LENGTH, OBS_DIM, load_average, machine, our_learner, set_threads
from train_throughput import synthetic_batch

REFERENCE = "NM512/dreamerv3-torch"


def import_from_checkout(root: Path, name: str):
    """Import top-level module ``name`` from a peer checkout, then forget the checkout's modules.

    Both peers ship top-level modules called ``dreamer``, ``tools`` and ``networks``; dropping them
    from ``sys.modules`` after the import lets the second peer import its own. The loaded module keeps
    references to everything it imported, so it keeps working.
    """
    root = root.resolve()
    if not (root / f"{name}.py").is_file():
        raise SystemExit(f"{root} is not a peer checkout: {root / f'{name}.py'} is missing")
    before = set(sys.modules)
    sys.path.insert(0, str(root))
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return importlib.import_module(name)
    finally:
        sys.path.remove(str(root))
        for key in set(sys.modules) - before:
            if str(getattr(sys.modules[key], "__file__", None) or "").startswith(str(root)):
                del sys.modules[key]


def dreamerv3_torch(root: Path, batch: dict) -> Callable[[], object]:
    """One update of dreamerv3-torch: its ``Dreamer._train`` (world model, then imagined behaviour)."""
    import gym  # the peer's own dependencies (bench/requirements-peers.txt)
    from ruamel.yaml import YAML

    dreamer = import_from_checkout(root, "dreamer")
    # Their MLP defaults to device="cuda" and the encoder/decoder MLPs do not pass a device; on a
    # CPU-only torch that default cannot even be constructed, so point the default at the CPU.
    mlp_init = dreamer.models.networks.MLP.__init__
    mlp_init.__defaults__ = tuple("cpu" if d == "cuda" else d for d in mlp_init.__defaults__)
    configs = YAML(typ="safe").load((root / "configs.yaml").read_text())
    config = configs["defaults"]
    for key, value in configs["dmc_proprio"].items():  # their --configs merge: nested dicts update
        if isinstance(value, dict) and key in config:
            config[key].update(value)
        else:
            config[key] = value
    config.update(device="cpu", compile=False, precision=32, batch_size=BATCH, batch_length=LENGTH,
                  imag_horizon=HORIZON, num_actions=ACT_DIM)
    obs_space = gym.spaces.Dict({"state": gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), dtype=np.float32)})
    act_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), dtype=np.float32)
    with contextlib.redirect_stdout(sys.stderr):
        agent = dreamer.Dreamer(obs_space, act_space, argparse.Namespace(**config), SimpleNamespace(step=0),
                                dataset=None).to("cpu")
    agent.requires_grad_(requires_grad=False)  # as their main(); training re-enables it per module
    data = {"state": batch["obs"], "action": batch["action"], "reward": batch["reward"],
            "discount": np.ones_like(batch["reward"]), "is_first": batch["is_first"],
            "is_terminal": batch["is_terminal"],
            # Their preprocess always divides data["image"] by 255 (DMC renders frames even for proprio
            # runs); a 1×1 placeholder keeps that step cheap. The proprio encoder never reads it.
            "image": np.zeros((BATCH, LENGTH, 1, 1, 3), np.uint8)}
    return lambda: agent._train(data)


class FixedBatch:
    """Stands in for r2dreamer's replay ``Buffer``: the same ``sample()``/``update()`` interface, always
    the same batch, so the update is timed without replay sampling (as for the other learners)."""

    def __init__(self, data, initial):
        self.data, self.initial = data, initial

    def sample(self):
        return self.data, None, self.initial

    def update(self, index, stoch, deter):
        """r2dreamer writes the new posterior latents back into replay; nothing to store here."""


def r2dreamer(root: Path, batch: dict, fp16: bool) -> Callable[[], object]:
    """One update of r2dreamer: its ``Dreamer.update`` (world model, imagination and replay value loss)."""
    import gymnasium
    from hydra import compose, initialize_config_dir
    from tensordict import TensorDict

    dreamer = import_from_checkout(root, "dreamer")
    if not fp16:
        # update() hard-codes fp16 autocast, which on a CPU is emulated and ~15× slower; disable it there.
        dreamer.autocast = functools.partial(torch.autocast, enabled=False)
    with initialize_config_dir(config_dir=str((root / "configs").resolve()), version_base=None):
        config = compose("configs", overrides=["env=dmc_proprio", "model=size12M", "device=cpu",
                                                "model.compile=false", f"batch_size={BATCH}",
                                                f"batch_length={LENGTH}", f"model.imag_horizon={HORIZON}"])
    obs_space = gymnasium.spaces.Dict({"state": gymnasium.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)})
    act_space = gymnasium.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)
    with contextlib.redirect_stdout(sys.stderr):
        agent = dreamer.Dreamer(config.model, obs_space, act_space).to("cpu")
    agent.train()
    # Their replay stores per-step tensors with a trailing axis of 1 for scalars.
    data = TensorDict({"state": torch.from_numpy(batch["obs"]), "action": torch.from_numpy(batch["action"]),
                       "reward": torch.from_numpy(batch["reward"])[..., None],
                       **{key: torch.from_numpy(batch[key])[..., None]
                          for key in ("is_first", "is_last", "is_terminal")}},
                      batch_size=(BATCH, LENGTH))
    initial = agent.get_initial_state(BATCH)
    replay = FixedBatch(data, (initial["stoch"], initial["deter"]))
    return lambda: agent.update(replay)


def time_updates(step: Callable[[], object], updates: int) -> list[tuple[float, float]]:
    """(wall s, process CPU s) per update. On a shared machine the CPU time, summed over the
    threads, is the steadier figure: wall time also counts waiting for a core."""
    times = []
    for _ in range(updates):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dreamerv3-torch", type=Path, help="checkout of NM512/dreamerv3-torch (6ef8646)")
    parser.add_argument("--r2dreamer", type=Path, help="checkout of NM512/r2dreamer (546e4fa)")
    parser.add_argument("--preset", default="s", help="our preset (s = the DMC-proprio sizes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--updates", type=int, default=3, help="timed updates per learner per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--r2dreamer-fp16", action="store_true",
                        help="keep r2dreamer's hard-coded fp16 autocast (slow on CPUs)")
    args = parser.parse_args()
    set_threads(args.threads)
    batch = synthetic_batch(BATCH, LENGTH, OBS_DIM, ACT_DIM)

    learners: dict[str, Callable[[], object]] = {}
    try:
        if args.dreamerv3_torch:
            learners[f"{REFERENCE} (dmc_proprio)"] = dreamerv3_torch(args.dreamerv3_torch, batch)
        if args.r2dreamer:
            autocast = "fp16 autocast" if args.r2dreamer_fp16 else "fp16 autocast off"
            learners[f"NM512/r2dreamer (size12M, {autocast})"] = r2dreamer(args.r2dreamer, batch,
                                                                           args.r2dreamer_fp16)
    except ModuleNotFoundError as exc:
        raise SystemExit(f"a peer needs the package {exc.name!r}, which this Python lacks; run the bench "
                         "from .venv-peers with bench/requirements-peers.txt installed (see --help)") from exc
    learners[f"this project (preset {args.preset})"] = our_learner(args.preset)[1]

    print(f"# {machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"B={BATCH} T={LENGTH} H={HORIZON}, obs {OBS_DIM}, act {ACT_DIM}, float32 eager; "
          f"load average {load_average()} at start", flush=True)
    for name, step in learners.items():
        start = time.perf_counter()
        step()
        print(f"# warm-up {name}: {time.perf_counter() - start:.2f} s", flush=True)
    rounds: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in learners}
    order = list(learners)
    for r in range(args.rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            rounds[name].append(time_updates(learners[name], args.updates))
            print(f"# round {r + 1} {name}: " + ", ".join(f"{w:.2f} s ({c:.2f} CPU s)" for w, c in rounds[name][-1]),
                  flush=True)
    print(f"# load average {load_average()} at end")

    def median(name: str, column: int) -> float:
        return statistics.median(t[column] for times in rounds[name] for t in times)

    reference = next((name for name in learners if name.startswith(REFERENCE)), None)
    round_heads = "".join(f"{f'round {r + 1}':>9}" for r in range(args.rounds))
    print(f"\n{'learner':<46}{'s/update':>9}{round_heads}{'updates/s':>10}{'vs ref':>8}"
          f"{'CPU s/update':>13}{'vs ref':>8}")
    for name, per_round in rounds.items():
        wall, cpu = median(name, 0), median(name, 1)
        ratios = [f"{median(reference, c) / m:.2f}x" if reference else "n/a" for c, m in ((0, wall), (1, cpu))]
        per_round_wall = "".join(f"{statistics.median(t[0] for t in times):>9.2f}" for times in per_round)
        print(f"{name:<46}{wall:>9.2f}{per_round_wall}{1 / wall:>10.3f}{ratios[0]:>8}{cpu:>13.2f}{ratios[1]:>8}")
    if reference:
        print(f"(vs ref: updates/s relative to {reference}; s/update and CPU s/update are medians over all "
              "timed updates)")

if __name__ == "__main__":
    main()
