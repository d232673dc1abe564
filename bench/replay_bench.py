"""Replay store benchmark: ingest rate with 1 s durability, 16x64 sample latency, memory for 1M steps.

    python bench/replay_bench.py [--steps 1000000] [--dir /tmp/replay_bench]

obs 48 floats, action 12 floats. Targets: ingest >= 50,000 transitions/s, sample <= 5 ms,
reader resident memory <= 2x the raw data. Also the replay node's admission check
(IngestGuard) alone, which runs before every add. Prints one line per figure.
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

from dreamer_core.storage import AdmissionLimits, IngestGuard, ReplayStore, Transition

OBS, ACT = 48, 12
# The payload a learner needs per step: obs, action, reward (float32) and three flags.
RAW_BYTES = (OBS + ACT + 1) * 4 + 3


def transition(i: int, sessions: int, obs: np.ndarray, act: np.ndarray) -> Transition:
    seq, session = divmod(i, sessions)
    return Transition(
        "a1", f"s{session}", seq, obs[i % 4096], act[i % 4096], 0.5, seq % 1000 == 0, seq % 1000 == 999, False, 1,
        1.7e9 + i * 0.01,
    )


def test_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((4096, OBS)).astype(np.float32)
    act = np.clip(rng.standard_normal((4096, ACT)), -1, 1).astype(np.float32)
    return obs, act


def ingest(directory: Path, steps: int, sessions: int) -> None:
    """Add ``steps`` transitions (round-robin over sessions) and print the rates."""
    obs, act = test_data()
    store = ReplayStore(directory, obs_dim=OBS, act_dim=ACT, durability_interval=1.0)
    start, cpu = time.perf_counter(), time.process_time()
    for i in tqdm(range(steps), desc="ingest", unit="step", mininterval=1.0, file=sys.stderr):
        store.add(transition(i, sessions, obs, act))
    store.close()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"ingest: {steps / wall:,.0f} transitions/s ({steps} steps, {sessions} sessions, 1 s durability)")
    print(f"ingest per CPU second of this process: {steps / cpu:,.0f} transitions/s")
    rss = psutil.Process().memory_info().rss
    print(f"writer process resident memory after ingest: {rss / 2**20:.1f} MiB (holds every sealed chunk)")


def admission(steps: int, sessions: int) -> None:
    """The replay node's IngestGuard.check alone, on valid transitions."""
    obs, act = test_data()
    limits = AdmissionLimits(robot_ids=frozenset(["a1"]), obs_dim=OBS, act_dim=ACT)
    next_seq: dict[str, int] = {}
    guard = IngestGuard(limits, next_seq=lambda robot, session: next_seq.get(session))
    items = [transition(i, sessions, obs, act) for i in range(steps)]
    start = time.perf_counter()
    for t in items:
        guard.check(t)
        next_seq[t.session_id] = t.seq + 1
    wall = time.perf_counter() - start
    print(f"admission check (IngestGuard.check): {steps / wall:,.0f} transitions/s ({steps} checks)")


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
    times, cpu_times = [], []
    for _ in range(2000):
        t0, c0 = time.perf_counter(), time.thread_time()
        store.sample(16, 64, rng=rng, recency=0.2)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)
    ms, cpu_ms = np.array(times) * 1e3, np.array(cpu_times) * 1e3
    raw = store.num_steps * RAW_BYTES
    print(f"steps stored: {store.num_steps}, open as reader: {opened:.2f} s")
    print(f"sample 16x64: median {np.median(ms):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms, max {ms.max():.3f} ms")
    # CPU time leaves out waiting for a core, which dominates the wall p99 on a busy machine.
    print(f"sample 16x64 CPU time: median {np.median(cpu_ms):.3f} ms, p99 {np.percentile(cpu_ms, 99):.3f} ms")
    print(f"reader resident memory: {rss / 2**20:.1f} MiB for {raw / 2**20:.1f} MiB raw data = {rss / raw:.2f}x")
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
        ingest(directory, args.steps, args.sessions)
        admission(min(args.steps, 200_000), args.sessions)
        sys.stdout.flush()  # keep this process's lines before the reader's
        # A fresh process, so the figures are those of a learner that opens the store.
        subprocess.run([sys.executable, __file__, "--dir", str(directory), "--reader-only"], check=True)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
