"""Per-tick control logic of the onboard control node (no ROS, no torch)."""

from dreamer_core.control.controller import Controller, TickOutput
from dreamer_core.control.exploration import InitialPolicy
from dreamer_core.control.safety import SafetyMonitor
from dreamer_core.control.timing import TickStats

__all__ = ["Controller", "InitialPolicy", "SafetyMonitor", "TickOutput", "TickStats"]
