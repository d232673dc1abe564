"""Long property-based fuzz of replay ingest: the property of tests/unit/test_replay_fuzz.py, many more examples.

    python bench/fuzz_replay.py [--examples 5000] [--seed 0] [--max-size 60]

Each example is a list of up to --max-size transitions (every field of the Transition message
fuzzed, store reopens mixed in) fed through the replay node's IngestGuard into a fresh
ReplayStore; the invariants are in tests/unit/replay_fuzz.py. Prints the examples run, the
transitions tried, the refusals by kind and the result; exits 1 on a falsified invariant
(hypothesis prints the shrunk failing example).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from replay_fuzz import REOPEN, check_ingest, ingest_runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-size", type=int, default=60)
    args = parser.parse_args()
    refusals: Counter = Counter()
    tried = {"examples": 0, "transitions": 0, "reopens": 0}

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(run=ingest_runs(max_size=args.max_size))
    def fuzz(run):
        with tempfile.TemporaryDirectory(prefix="replay_fuzz_") as directory:
            refusals.update(check_ingest(run, Path(directory)))
        tried["examples"] += 1
        tried["reopens"] += run.count(REOPEN)
        tried["transitions"] += len(run) - run.count(REOPEN)

    start = time.perf_counter()
    try:
        fuzz()
        result = "passed"
    except Exception as exc:  # any exception out of the property is a falsified invariant
        result = f"FAILED: {type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - start
    print(f"fuzz_replay: {tried['examples']} examples (asked {args.examples}, seed {args.seed}), "
          f"{tried['transitions']} transitions, {tried['reopens']} reopens, {elapsed:.0f} s")
    refused = sum(refusals.values())
    print(f"refused {refused}, admitted or dropped as duplicates {tried['transitions'] - refused}; by kind: "
          + ", ".join(f"{kind} {n}" for kind, n in sorted(refusals.items())))
    print(f"result: {result}")
    return 0 if result == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
