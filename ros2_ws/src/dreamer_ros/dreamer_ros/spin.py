"""The one `main` every dreamer_ros node shares: init, spin, stop worker threads, shut down."""

from __future__ import annotations

import contextlib
import signal
import threading
import time

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions


def run_node(factory, args=None) -> None:
    """Spin the node `factory()` builds until SIGINT/SIGTERM, then call its `stop()` before shutdown.

    The executor spins in a background thread and the main thread only waits for a
    signal: rclpy's own handler would invalidate the context while worker threads
    (control loop, simulator, learner) still publish, so we stop them first.
    `spin()` (not a `spin_once` loop) keeps the executor's Python overhead, and so
    its hold on the GIL, low: the control thread needs the GIL at every tick.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # Explicit: a shell starts background jobs with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    node = factory()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=_spin, args=(executor,), daemon=True, name="executor")
    spinner.start()
    try:
        while spinner.is_alive():
            time.sleep(0.2)  # not join(): an interrupted join leaves the thread's lock broken (CPython)
    except KeyboardInterrupt:
        pass
    finally:
        stop = getattr(node, "stop", None)
        if stop is not None:
            stop()
        executor.shutdown(timeout_sec=2.0)
        rclpy.try_shutdown()  # wakes the executor if it still waits
        spinner.join(timeout=5.0)
        node.destroy_node()


def _spin(executor) -> None:
    with contextlib.suppress(ExternalShutdownException):
        executor.spin()
