"""The imagination horizon from the model's skill (the MBPO idea: imagine only as far as the model
is still worth more than a guess).

``H`` = the largest k whose reward and continue skill both reach the floor, clipped to
[``h_min``, ``h_max``]. Skill is measured against the better of two baselines, one of which
(persistence) is nearly exact for small k, so it usually rises with k first and falls once the
model's own error grows; the rule takes the last k at or above the floor, wherever the curve
crosses it.
"""

from __future__ import annotations

from collections.abc import Sequence


def skill_horizon(skill_reward: Sequence[float], skill_continue: Sequence[float], floor: float,
                  h_min: int, h_max: int) -> int:
    """The largest k (1-based) with both skills ≥ ``floor``, clipped to [h_min, h_max]; ``h_min``
    when no k reaches it (NaN never does)."""
    if not 1 <= h_min <= h_max:
        raise ValueError(f"need 1 <= h_min <= h_max, got h_min={h_min}, h_max={h_max}")
    reached = [k for k, (r, c) in enumerate(zip(skill_reward, skill_continue, strict=True), start=1)
               if r >= floor and c >= floor]
    return min(max(max(reached, default=h_min), h_min), h_max)
