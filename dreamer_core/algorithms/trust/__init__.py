"""Model trust: may a candidate policy go to the robot, and did the last one deliver?

Every measure runs on held-out blocks of episodes the model never trained on (the split is the
replay store's, ``dreamer_core.storage.held_out``), and again on training windows for the gap:

- ``skill``: open-loop reward and continue error for k = 1..K against the batch mean and
  persistence baselines;
- ``imagination``: the ensemble heads' disagreement along the candidate's own imagined
  trajectories relative to real data, and the reward per step it imagines from episode starts;
- ``horizon``: the imagination horizon from the skill curve (when the robot config asks for it);
- ``decision``: the promotion rule on those numbers, with reasons and thresholds;
- ``optimism``: imagined against real reward per step of deployed versions (reported).

docs/model_trust.md explains each measure, its threshold and how to read it.
"""

from dreamer_core.algorithms.trust.decision import Measurements, TrustReport, decide, measure, too_little_data
from dreamer_core.algorithms.trust.optimism import over_optimism, real_reward_by_version

__all__ = ["Measurements", "TrustReport", "decide", "measure", "over_optimism", "real_reward_by_version",
           "too_little_data"]
