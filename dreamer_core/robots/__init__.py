"""Robot configs and the sim/real-shared signal processing (observation, action, reward).

Nothing here imports torch, MuJoCo or ROS: the onboard control node uses it as is.
"""

from dreamer_core.robots.action import ActionMapper
from dreamer_core.robots.config import ConfigError, RobotConfig, load_robot_config
from dreamer_core.robots.observation import ObservationBuilder
from dreamer_core.robots.reward import RewardFunction
from dreamer_core.robots.signals import RobotSignals

__all__ = [
    "ActionMapper", "ConfigError", "ObservationBuilder", "RewardFunction", "RobotConfig", "RobotSignals",
    "load_robot_config",
]
