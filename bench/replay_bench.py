"""Replay store benchmark: ingest rate with 1 s durability, 16x64 sample latency, memory for 1M steps.

    python bench/replay_bench.py [--steps 1000000] [--dir /tmp/replay_bench]

obs 48 floats, action 12 floats. Targets (issue 4): ingest >= 50,000 transitions/s,
sample <= 5 ms, reader resident memory <= 2x the raw data. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from tqdm import tqdm

from dreamer_core.storage import ReplayStore, Transition

OBS, ACT = 48, 12
# The payload a learner needs per step: obs, action, reward (float32) and three flags.
RAW_BYTES = (OBS + ACT + 1) * 4 + 3


def ingest(directory: Path, steps: int, sessions: int) -> float:
    """Add ``steps`` transitions (round-robin over sessions); returns transitions per second."""
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((4096, OBS)).astype(np.float32)
    act = rng.standard_normal((4096, ACT)).astype(np.float32)
    store = ReplayStore(directory, obs_dim=OBS, act_dim=ACT, durability_interval=1.0)
    start = time.perf_counter()
    for i in tqdm(range(steps), desc="ingest", unit="step", mininterval=1.0, file=sys.stderr):
        seq, session = divmod(i, sessions)
        store.add(
            Transition(
                "a1",
                f"s{session}",
                seq,
                obs[i % 4096],
                act[i % 4096],
                0.5,
                seq % 1000 == 0,
                seq % 1000 == 999,
                False,
                1,
                1.7e9 + i * 0.01,
            )
        )
    store.close()
    rate = steps / (time.perf_counter() - start)
    rss = psutil.Process().memory_info().rss
    print(f"writer process resident memory after ingest: {rss / 2**20:.1f} MiB (holds every sealed chunk)")
    return rate


def reader_figures(directory: Path) -> None:
    """Open the store as a reader in this process and print sample latency and memory."""
    process = psutil.Process()
    before = process.memory_info().rss
    start = time.perf_counter()
    store = ReplayStore(directory, readonly=True)
    opened = time.perf_counter() - start
    rss = process.memory_info().rss - before
    rng = np.random.default_rng(0)
    for _ in range(20):  # warm-up
        store.sample(16, 64, rng=rng)
    times = []
    for _ in range(2000):
        t0 = time.perf_counter()
        store.sample(16, 64, rng=rng, recency=0.2)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    raw = store.num_steps * RAW_BYTES
    print(f"steps stored: {store.num_steps}, open as reader: {opened:.2f} s")
    print(
        f"sample 16x64: median {np.median(ms):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms, "
        f"max {ms.max():.3f} ms"
    )
    print(
        f"reader resident memory: {rss / 2**20:.1f} MiB for {raw / 2**20:.1f} MiB raw data = {rss / raw:.2f}x"
    )
    print(f"disk: {store.disk_bytes / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="store directory (default: a temporary one, removed after)")
    parser.add_argument("--reader-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader_only:
        reader_figures(args.dir)
        return
    directory = args.dir or Path(tempfile.mkdtemp(prefix="replay_bench_"))
    try:
        rate = ingest(directory, args.steps, args.sessions)
        print(
            f"ingest: {rate:,.0f} transitions/s "
            f"({args.steps} steps, {args.sessions} sessions, 1 s durability)"
        )
        # A fresh process, so the figures are those of a learner that opens the store.
        subprocess.run([sys.executable, __file__, "--dir", str(directory), "--reader-only"], check=True)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
