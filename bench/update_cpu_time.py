"""CPU seconds per update of this learner on the side-by-side workload, for before/after comparisons
on a loaded machine (process CPU time moves far less with the load than wall time). Not a test.

    python bench/update_cpu_time.py --preset s --updates 3
    PYTHONPATH=/path/to/other/checkout python bench/update_cpu_time.py ...   # the same for another tree

Run the trees alternately in fresh processes. One thread, one warm-up update, median of ``--updates``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from learner_workload import load_average, our_learner, set_threads

import dreamer_core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="s")
    parser.add_argument("--updates", type=int, default=3)
    args = parser.parse_args()
    set_threads(1)
    _, update = our_learner(args.preset)
    update()
    cpu, wall = [], []
    for _ in range(args.updates):
        c0, w0 = time.process_time(), time.perf_counter()
        update()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    print(f"{dreamer_core.__file__} {args.preset}: CPU s/update {statistics.median(cpu):.3f} "
          f"({', '.join(f'{c:.3f}' for c in cpu)}), wall {statistics.median(wall):.2f} s, load {load_average()}")


if __name__ == "__main__":
    main()
