"""Shared helpers for the replay store tests, and a writer process for the multi-process ones.

Run as a script: ``python replay_support.py DIR COUNT [--start N] [--chunk L] [--interval S] [--pace K] [--hold]``
adds COUNT transitions of stream ("robot", "s0") from seq N, prints ``durable <seq>`` after
each explicit flush, and exits cleanly at the end. With ``--hold`` it flushes, prints
``holding`` and waits for a line on stdin, then adds COUNT more before closing.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from dreamer_core.storage import ReplayStore, Transition

OBS, ACT = 6, 3
EPISODE = 10  # steps per episode in generated streams


def session_tag(session: str) -> float:
    """The value ``make`` puts in obs[1] for a session, to tell sessions apart in a batch."""
    return float(sum(map(ord, session)) % 97 + 1)


def make(seq: int, session: str = "s0", robot: str = "robot", episode: int = EPISODE, **kw) -> Transition:
    """A transition whose content is a function of (seq, session), so tests can check every value."""
    obs = np.full(OBS, seq, np.float32)
    obs[1] = session_tag(session)
    fields = dict(
        robot_id=robot,
        session_id=session,
        seq=seq,
        obs=obs,
        action=np.full(ACT, -seq, np.float32),
        reward=float(seq % 7),
        is_first=seq % episode == 0,
        is_last=seq % episode == episode - 1,
        is_terminal=False,
        policy_version=seq // 100,
        stamp=1.7e9 + seq * 0.01,
    )
    fields.update(kw)
    return Transition(**fields)


def stored_seqs(store: ReplayStore, session: str = "s0") -> np.ndarray:
    """Every stored seq of one session, in stored order."""
    parts = [rows["seq"] for info, rows in store.iter_steps(session_id=session)]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def check_content(store: ReplayStore, session: str = "s0") -> None:
    """Assert that every stored row equals what ``make`` generated for its seq."""
    for _, rows in store.iter_steps(session_id=session):
        seq = rows["seq"].astype(np.float32)
        np.testing.assert_array_equal(rows["obs"][:, 0], seq)
        np.testing.assert_array_equal(rows["action"][:, 0], -seq)
        np.testing.assert_array_equal(rows["reward"], (rows["seq"] % 7).astype(np.float32))


def _writer() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("count", type=int)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--pace", type=int, default=0, help="sleep 1 ms after every PACE adds")
    parser.add_argument("--hold", action="store_true", help="hold the store open until a line arrives on stdin")
    args = parser.parse_args()
    with ReplayStore(
        args.directory, obs_dim=OBS, act_dim=ACT, chunk_length=args.chunk, durability_interval=args.interval
    ) as store:
        print("ready", flush=True)
        rounds = 2 if args.hold else 1
        for start in range(args.start, args.start + rounds * args.count, args.count):
            if start > args.start:
                store.flush()
                print("holding", flush=True)
                sys.stdin.readline()
            for seq in range(start, start + args.count):
                store.add(make(seq))
                if (seq + 1) % 97 == 0:
                    store.flush()
                    print(f"durable {seq}", flush=True)
                if args.pace and seq % args.pace == 0:
                    time.sleep(0.001)
    print("done", flush=True)


if __name__ == "__main__":
    sys.exit(_writer())
