"""The one `main` every dreamer_ros node shares: init, spin, stop worker threads, shut down."""

from __future__ import annotations

import signal

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.signals import SignalHandlerOptions


def run_node(factory, args=None, threads: int = 2) -> None:
    """Spin the node `factory()` builds until SIGINT/SIGTERM, then call its `stop()` before shutdown.

    rclpy's own signal handler would invalidate the context while worker threads
    (control loop, simulator, learner) still publish; we stop them first instead.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # Explicit: a shell starts background jobs with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    node = factory()
    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    try:
        # Short waits: a Python signal handler only runs between them.
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stop = getattr(node, "stop", None)
        if stop is not None:
            stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
