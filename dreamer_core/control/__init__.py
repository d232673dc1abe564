"""Per-tick control logic of the onboard control node (no ROS, no torch)."""

from dreamer_core.control.controller import Controller, TickOutput
from dreamer_core.control.exploration import InitialPolicy
from dreamer_core.control.faults import FAULTS, Fault, SensorFault
from dreamer_core.control.policy_manager import PolicyManager, Switch
from dreamer_core.control.safety import SafetyMonitor
from dreamer_core.control.sensors import SensorReadings, SignalAssembler
from dreamer_core.control.timing import FixedRateLoop, TickStats
from dreamer_core.control.version_state import VersionState, VersionStateError

__all__ = [
    "FAULTS", "Controller", "Fault", "FixedRateLoop", "InitialPolicy", "PolicyManager", "SafetyMonitor",
    "SensorFault", "SensorReadings", "SignalAssembler", "Switch", "TickOutput", "TickStats", "VersionState",
    "VersionStateError",
]
