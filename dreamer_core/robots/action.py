"""Map normalised policy actions to joint position targets (the one onboard action clip)."""

from __future__ import annotations

import numpy as np

from dreamer_core.robots.config import RobotConfig
from dreamer_core.robots.gait import BaseGait


class ActionMapper:
    """``target = default + gait(k) + scale * clip(action)``, low-pass filtered, kept inside the joint
    limits.

    The clip to ``[-action.clip, action.clip]`` (= [-1, 1], the policy's action box) in
    :meth:`bounded` is the one onboard clip of the policy action. ``gait(k)`` is the base gait's
    offsets at the episode's control step k (zeros unless ``action.kind`` is ``base_gait``). The
    filter is ``y <- alpha * target + (1 - alpha) * y`` (``action.lowpass_alpha``; 1 disables it).
    Targets stay ``safety.joint_limit_margin_rad`` inside the limits. :meth:`executed` maps targets
    back to the action they carry out, which is what replay records.
    """

    def __init__(self, config: RobotConfig):
        self.config = config
        self.default = np.array([j.default for j in config.joints])
        margin = config.safety.joint_limit_margin_rad
        lower = np.array([j.lower for j in config.joints]) + margin
        upper = np.array([j.upper for j in config.joints]) - margin
        # A margin wider than the range would invert the bounds: pin to the mid-range then.
        mid = (lower + upper) / 2
        self.lower = np.minimum(lower, mid)
        self.upper = np.maximum(upper, mid)
        self.scale = np.broadcast_to(np.asarray(config.action.scale, dtype=np.float64), self.default.shape)
        self.clip = config.action.clip
        self.alpha = config.action.lowpass_alpha
        self.gait = BaseGait(config)
        self._filtered = self.default.copy()
        self._step = 0  # control steps mapped in this episode (the gait's clock)
        self._gait_offsets = self.gait.offsets(0)  # of the newest mapped step

    def reset(self, current_joint_pos: np.ndarray | None = None) -> None:
        """Restart the filter from the current pose (or the default pose)."""
        start = self.default if current_joint_pos is None else np.asarray(current_joint_pos, dtype=np.float64)
        if start.shape != self.default.shape:
            raise ValueError(
                f"current_joint_pos: expected {self.default.size} values, got shape {start.shape}"
            )
        self._filtered = start.copy()
        self._step = 0
        self._gait_offsets = self.gait.offsets(0)

    @property
    def phase(self) -> float:
        """The gait's cycle angle (rad) of the next action to map (the ``gait_phase`` observation)."""
        return self.gait.phase(self._step)

    def bounded(self, action: np.ndarray) -> np.ndarray:
        """The action [J] (float64) clipped to the action box; ValueError on a wrong shape or NaN/inf."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.default.shape:
            raise ValueError(f"action: expected {self.default.size} values, got shape {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action: non-finite values {action}")
        return np.clip(action, -self.clip, self.clip)

    def executed(self, targets: np.ndarray) -> np.ndarray:
        """The action [J] (float32, in the action box) that ``targets`` [J] (rad) carry out: the inverse
        of the mapping, so that after the filter, the rate limit and the soft start replay records what
        the motors were sent. A target beyond the box (a soft start from a far pose) is clipped to it."""
        offset = (np.asarray(targets, dtype=np.float64) - self.default - self._gait_offsets) / self.scale
        return np.clip(offset, -self.clip, self.clip).astype(np.float32)

    def __call__(self, action: np.ndarray) -> np.ndarray:
        """Joint position targets [J] (rad) for a policy action [J] (clipped by :meth:`bounded`)."""
        self._gait_offsets = self.gait.offsets(self._step)
        self._step += 1
        target = self.default + self._gait_offsets + self.scale * self.bounded(action)
        self._filtered = self.alpha * target + (1.0 - self.alpha) * self._filtered
        return np.clip(self._filtered, self.lower, self.upper)
