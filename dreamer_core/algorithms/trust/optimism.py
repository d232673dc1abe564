"""Over-optimism: what the model promised for a deployed version against what the robot then got.

When a version is promoted the learner keeps its imagined reward per step (from held-out
episode starts). Once the robot has run that version, its episodes say what it really collected
(all of them: what the robot got does not depend on which blocks the learner holds out).
Reported (TensorBoard, decisions, the learner state), not gated by the learner: it is known only
after the version has run; the robot's canary acts on it.
"""

from __future__ import annotations

from collections.abc import Mapping

from dreamer_core.storage.episodes import episodes

# Real steps of a policy version before its over-optimism is reported (noise below that).
MIN_STEPS_FOR_OVER_OPTIMISM = 200


def real_reward_by_version(store) -> dict[int, tuple[float, int]]:
    """Mean real reward per step (episode-start rows excluded) and step count per policy version,
    over the episodes of a replay store that one version ran from start to end."""
    sums: dict[int, list[float]] = {}
    for ep in episodes(store.iter_steps()):
        if not ep.started or ep.mixed_versions or ep.steps < 2:
            continue
        acc = sums.setdefault(ep.policy_version, [0.0, 0])
        acc[0] += ep.ret  # the first row's reward is 0 by convention: nothing was received yet
        acc[1] += ep.steps - 1
    return {v: (total / count, count) for v, (total, count) in sums.items()}


def over_optimism(predicted: Mapping[int, float], real: Mapping[int, tuple[float, int]]) -> dict[str, float]:
    """Imagined minus real mean reward per step, for the newest version in ``predicted`` (imagined
    reward per step when it was promoted) that has at least :data:`MIN_STEPS_FOR_OVER_OPTIMISM`
    real steps in ``real`` (:func:`real_reward_by_version`); empty when none has."""
    for version in sorted(predicted, reverse=True):
        mean, steps = real.get(version, (0.0, 0))
        if steps >= MIN_STEPS_FOR_OVER_OPTIMISM:
            return {"over_optimism": predicted[version] - mean, "over_optimism_version": float(version),
                    "real_reward_per_step": mean, "promised_reward_per_step": predicted[version]}
    return {}
