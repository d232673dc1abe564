"""run_node, the main of every dreamer_ros node: stop order, repeated signals, fatal errors.

Each case runs a small real rclpy node under run_node in its own process and signals it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.ros

NODE = textwrap.dedent("""
    import sys, threading, time
    from rclpy.node import Node
    from dreamer_ros.spin import run_node

    MODE = sys.argv[1]

    class Probe(Node):
        def __init__(self):
            super().__init__("spin_probe")
            self.closed = False
            self.fatal_error = None
            # A fast timer stands for subscriptions: after close it must never run again.
            self.create_timer(0.005, self._on_timer)
            if MODE == "fatal":
                threading.Timer(1.0, self._die).start()
            self.spinning = False

        def _on_timer(self):
            if self.closed:
                raise RuntimeError("callback ran after the node's resources were closed")
            if not self.spinning:
                self.spinning = True
                print("ready", flush=True)

        def _die(self):
            self.fatal_error = "worker died: simulated"

        def stop(self):
            self.closed = True  # e.g. the replay store closes here
            time.sleep(1.5 if MODE == "slow_stop" else 0.3)
            print("stopped", flush=True)

    run_node(Probe, args=sys.argv[2:])
""")


def start(mode: str, env) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", NODE, mode], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_callbacks_stop_before_the_node_closes_its_resources(ros_env):
    proc = start("normal", ros_env)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped" in out and "Traceback" not in out, out


def test_more_signals_while_stopping_are_reported_not_raised(ros_env):
    proc = start("slow_stop", ros_env)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)  # ros2 launch and the terminal both send one
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped" in out, out
    assert "already stopping" in out and "Traceback" not in out and "KeyboardInterrupt" not in out, out


def test_a_fatal_error_in_a_worker_exits_non_zero(ros_env):
    proc = start("fatal", ros_env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "worker died: simulated" in out and "stopped" in out, out


def test_a_node_given_use_sim_time_stops_at_once_saying_why(ros_env):
    """`-p use_sim_time:=true` (or a params file not checked by a launcher): nothing publishes /clock."""
    proc = subprocess.run([sys.executable, "-c", NODE, "normal", "--ros-args", "-p", "use_sim_time:=true"],
                          env=ros_env, capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "use_sim_time is not supported" in out and "stopped" in out, out
