"""Long property-based fuzz of Controller.tick (the CI test runs the same property, derandomized and short).

Every field of every sensor message the control node reads (JointState, Imu, Odometry, foot
contacts), the policy's output and the timing are broken in turn; the tick must never raise, must
always send a command within the joint limits (none only before the robot was ever plausibly
measured) and must name its fault. Prints how often each fault was reached.

    python bench/fuzz_control.py --examples 20000 [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from hypothesis import given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from controller_fuzz import episodes, run_and_check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=20_000, help="hypothesis examples (runs of 1-8 ticks)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    outcomes: Counter[str] = Counter()

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None, derandomize=False)
    @given(episodes())
    def fuzz(episode):
        for out in run_and_check(*episode):
            outcomes[out.fault or f"({out.mode})"] += 1

    started = time.perf_counter()
    fuzz()  # raises, with the shrunk failing example, if an invariant breaks
    seconds = time.perf_counter() - started
    print(f"{args.examples} examples, {sum(outcomes.values())} ticks, {seconds:.0f} s: no invariant broken")
    for name, count in sorted(outcomes.items(), key=lambda item: -item[1]):
        print(f"  {count:8d}  {name}")


if __name__ == "__main__":
    main()
