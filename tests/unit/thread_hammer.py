"""Run test bodies in threads at once, over and over, and collect what any of them raised."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable


def hammer(bodies: list[Callable[[random.Random], None]], seconds: float = 3.0) -> list[BaseException]:
    """Call each body repeatedly in its own thread (with its own seeded RNG) for ``seconds``; a body
    that raises stops its thread. Returns the exceptions raised."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(body, seed):
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                body(rng)
            except BaseException as exc:  # any exception fails the calling test
                errors.append(exc)
                return

    threads = [threading.Thread(target=run, args=(body, seed)) for seed, body in enumerate(bodies)]
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    return errors
