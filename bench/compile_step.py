"""Does torch.compile of whole learner steps pay on this machine? (not a test)

    python bench/compile_step.py --preset xs --mode eager
    python bench/compile_step.py --preset xs --mode compiled      # run twice: the second run shows the cache

Workload as bench/side_by_side.py (B = 16 × T = 64, horizon 15, obs 24, act 6, float32). ``compiled``
wraps the agent's two differentiable halves, ``world_model_loss`` (encoder, 64-step observe loop,
heads, losses) and ``behaviour_losses`` (15-step imagination, heads, λ-returns, losses), in
``torch.compile`` (inductor, CPU); their backward passes are compiled with them. Prints the first
update's time (compilation included), the steady seconds per update (median) and whether the
inductor/AOTAutograd caches under ``TORCHINDUCTOR_CACHE_DIR`` were warm: running the compiled mode
a second time in a fresh process measures what a learner restart costs with the cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from learner_workload import load_average, machine, our_learner, set_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="xs")
    parser.add_argument("--mode", choices=["eager", "compiled"], default="compiled")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--updates", type=int, default=5, help="timed updates after the first")
    args = parser.parse_args()
    set_threads(args.threads)
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "default (/tmp/torchinductor_$USER)")
    print(f"# {machine()}, torch {torch.__version__}, {args.threads} threads, preset {args.preset}, "
          f"mode {args.mode}, cache dir {cache}, load average {load_average()}")
    agent, update = our_learner(args.preset)
    if args.mode == "compiled":
        agent.world_model_loss = torch.compile(agent.world_model_loss)
        agent.behaviour_losses = torch.compile(agent.behaviour_losses)
    start = time.perf_counter()
    update()
    first = time.perf_counter() - start
    times = []
    for _ in range(args.updates):
        start = time.perf_counter()
        update()
        times.append(time.perf_counter() - start)
    steady = statistics.median(times)
    print(f"first update (incl. compilation) {first:.1f} s; steady {steady:.3f} s/update "
          f"(median of {args.updates}: {', '.join(f'{t:.3f}' for t in times)}); load average {load_average()}")


if __name__ == "__main__":
    main()
