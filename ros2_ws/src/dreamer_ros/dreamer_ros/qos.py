"""QoS profiles (docs/architecture.md#messages-and-qos), one place for every node and test."""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# Sensors: only the newest reading matters; best effort is fine.
SENSOR = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT
)
# Commands: newest only, but delivered reliably to the driver.
COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
# Transitions: every tick must reach the replay node; a deep queue rides out hiccups, and
# transient-local lets a restarted replay node collect what it missed (the store drops
# duplicates by seq). 6000 ticks = 2 minutes at 50 Hz.
TRANSITION = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=6000,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Policy bundles: a control node that (re)starts later still gets the latest one.
POLICY_BUNDLE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# E-stop: latched, so a late subscriber sees a standing stop request.
ESTOP = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Policy events (canary verdicts, rollbacks): few and each one matters; a learner that (re)starts
# later still receives the recent ones.
POLICY_EVENT = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=50,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
