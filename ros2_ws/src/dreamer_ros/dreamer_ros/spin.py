"""The one `main` every dreamer_ros node shares: init, spin, stop in a safe order, shut down.

Shutdown order on SIGINT/SIGTERM: (0) a node with a `drain()` takes what is still
arriving (the replay node: the control node's closing transition); (1) the executor stops and
its thread is joined, so no callback runs any more; (2) the node's `stop()` ends its worker threads and
closes its resources (the replay store, the learner checkpoint, the control
node's closing transition); (3) the node is destroyed and rclpy shut down. Further
signals while stopping (`ros2 launch` and a terminal's Ctrl-C both send SIGINT)
are reported, not raised, so a stop never ends in a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback

import rclpy
from rclpy._rclpy_pybind11 import InvalidHandle
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from dreamer_core.storage import ReplayStoreError
from dreamer_ros.params import refuse_sim_time

# Longest wait for the callback in progress when stopping (launch escalates to SIGTERM after 5 s).
CALLBACK_DRAIN_S = 2.0
# What a node raises while starting when its inputs are unusable (config, files, parameters).
STARTUP_ERRORS = (OSError, ValueError, ReplayStoreError)


def run_node(factory, args=None) -> None:
    """Spin the node `factory()` builds until SIGINT/SIGTERM or a fatal error, then stop it.

    The executor spins in a background thread and the main thread only waits: rclpy's own
    signal handler would invalidate the context while worker threads (control loop,
    simulator, learner) still publish. `spin()` (not a `spin_once` loop) keeps the
    executor's hold on the GIL low: the control thread needs the GIL at every tick.
    A node may set `fatal_error` (a string) to make the process exit with status 1. A node that
    cannot start because of its inputs (STARTUP_ERRORS) exits with status 1 and one line saying why.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # Explicit: a shell starts background jobs with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop_requested)
    node = None
    executor = SingleThreadedExecutor()
    crash: list[str] = []
    stopping = threading.Event()
    spinner = threading.Thread(target=_spin, args=(executor, crash, stopping), daemon=True, name="executor")
    try:
        node = factory()
        if refused := refuse_sim_time(node):  # given at start: stop at once, saying why
            node.fatal_error = refused
        executor.add_node(node)
        spinner.start()
        while spinner.is_alive() and not getattr(node, "fatal_error", None):
            time.sleep(0.2)  # not join(): an interrupted join leaves the thread's lock broken (CPython)
    except KeyboardInterrupt:
        if node is None:  # stopped while still starting up
            rclpy.try_shutdown()
            _exit(0)
    except STARTUP_ERRORS as exc:
        if node is not None:
            raise
        # A bad robot config, a missing key, an unusable store: the message names it; a traceback adds nothing.
        sys.stderr.write(f"[{os.path.basename(sys.argv[0])}] cannot start: {exc}\n")
        rclpy.try_shutdown()
        _exit(1)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _already_stopping)
    drain = getattr(node, "drain", None)
    if drain is not None and spinner.is_alive():
        drain()  # callbacks still run: take what other nodes send while they stop too
    stopping.set()
    executor.shutdown(timeout_sec=CALLBACK_DRAIN_S)
    if spinner.is_alive():
        spinner.join(timeout=CALLBACK_DRAIN_S)
    failures = [f"executor: {crash[0]}"] if crash else []
    if spinner.is_alive():
        node.get_logger().error(f"a callback is still running after {CALLBACK_DRAIN_S} s; stopping anyway")
    try:
        stop = getattr(node, "stop", None)
        if stop is not None:
            stop()
    except Exception as exc:  # reported once, without a traceback on the terminal
        failures.append(f"stop: {type(exc).__name__}: {exc}")
    if getattr(node, "fatal_error", None):
        failures.append(node.fatal_error)
    for failure in failures:
        node.get_logger().fatal(failure)
    node.destroy_node()
    rclpy.try_shutdown()
    _exit(1 if failures else 0)


def _exit(status: int) -> None:
    """Exit now: everything is stopped, written and closed. The interpreter's teardown is skipped
    because collecting the learner's torch object graph alone takes seconds, longer than launch
    waits before SIGTERM."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _spin(executor, crash: list[str], stopping: threading.Event) -> None:
    try:
        executor.spin()
    except ExternalShutdownException:
        pass
    except Exception as exc:  # a callback raised: the node cannot go on; main() exits non-zero
        if isinstance(exc, InvalidHandle) and stopping.is_set():
            return  # rclpy destroyed the executor's guard condition on shutdown while spin_once still used it
        crash.append(f"{type(exc).__name__}: {exc}")
        sys.stderr.write(traceback.format_exc())


def _stop_requested(signum, frame) -> None:
    # Swap first: a second signal right behind this one must not raise inside the stop sequence.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _already_stopping)
    raise KeyboardInterrupt


def _already_stopping(signum, frame) -> None:
    os.write(2, f"[{signal.Signals(signum).name}] already stopping; waiting for the node to finish\n".encode())
