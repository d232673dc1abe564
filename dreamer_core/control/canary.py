"""The canary's verdict: did a newly accepted policy version do as well on the robot as the one before?

Pure functions of episode figures (no threads, no ROS, no torch); the policy manager calls
:func:`judge` once a canary has finished ``canary.episodes`` complete episodes, or earlier when
:func:`cannot_pass` says the return check is lost already (docs/robot_config.md#canary):

- **return check**: the canary's mean episode return against the previous trusted version's
  recent complete episodes (its *baseline*), and again against the **best trusted version**'s kept
  episodes (the trusted version with the highest mean return so far, when it is another one): a
  canary clearly below either fails, so small regressions cannot pile up release after release,
  each within the margin of the one before. A bootstrap percentile interval of the baseline's
  mean absorbs how few baseline episodes there are; the canary fails when its mean lies below the
  interval's lower end by more than the margin: ``return_margin`` standard deviations of the
  baseline's returns, or ``return_tolerance`` times the magnitude of its mean if that is larger.
  Both are relative, never absolute, so one default fits every reward scale: the spread keeps the
  canary's own episode-to-episode noise (about one spread over sqrt(N)) from being taken for a
  regression, and the tolerance keeps a very repeatable baseline (a simulator) from turning a
  regression of a percent into a permanent rejection.
- **over-optimism check**: the manifest's ``imagined_reward_per_step`` (what the learner's model
  expected of the candidate) against the realised reward per step of the canary's episodes; the
  canary fails when the model promised more than ``over_optimism_share`` times the magnitude of the
  baseline's realised reward per step above what it delivered (relative, like the margin: one
  default for every reward scale).
- **fail fast**: after each complete canary episode, the episodes still to come are counted as
  the baseline's best episode; when even then the mean would lie below a threshold, the canary
  is judged at once on the episodes it has (a robot whose new policy falls need not fall
  ``canary.episodes`` times before it is rolled back).
- **fail closed**: a check without data (fewer than ``min_baseline_episodes`` baseline episodes;
  no imagined figure) is *not judged* and says why. A canary that neither check can judge is
  rolled back, except when its baseline is the initial policy (v0): then no learned policy has
  ever run, and refusing would keep the robot on exploration noise for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dreamer_core.robots.config import CanaryConfig

# How an episode ended (the controller says). Only the first three measure the policy: a swap, a
# sensor fault, the e-stop or a stop cut the episode short for reasons that are not the policy's.
COUNTED_ENDINGS = frozenset({"time_limit", "fall", "policy_fault"})
ENDINGS = COUNTED_ENDINGS | {"swap", "fault", "stop"}

PASSED, FAILED, NOT_JUDGED = "passed", "failed", "not judged"


@dataclass(frozen=True)
class FinishedEpisode:
    """One episode as the controller closed it: rows and return as the replay store will see them."""

    version: int
    ret: float  # sum of the rewards of its rows (the first row's is 0)
    steps: int  # rows, the first (is_first) and the last (is_last) included
    ending: str  # one of ENDINGS

    def __post_init__(self) -> None:
        if self.ending not in ENDINGS:
            raise ValueError(f"unknown episode ending {self.ending!r}; one of {sorted(ENDINGS)}")

    @property
    def counts(self) -> bool:
        """Whether this episode says something about its policy (a complete episode)."""
        return self.ending in COUNTED_ENDINGS


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str  # one line: each check with its measured values and threshold
    values: dict[str, object]  # the numbers behind it (JSON-ready: None where not judged)


def bootstrap_interval(values: Sequence[float], confidence: float, samples: int,
                       rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` at ``confidence`` (two-sided)."""
    data = np.asarray(values, dtype=np.float64)
    means = data[rng.integers(0, len(data), size=(samples, len(data)))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def reward_per_step(episodes: Sequence[tuple[float, int]]) -> float | None:
    """Total return over rewarded rows ((ret, steps) pairs; a first row carries no reward), as the
    learner's over-optimism counts real steps; None without any rewarded row."""
    rewarded = sum(steps - 1 for _, steps in episodes)
    return sum(ret for ret, _ in episodes) / rewarded if rewarded > 0 else None


Baseline = tuple[int, Sequence[tuple[float, int]]]  # (version, its complete episodes as (ret, steps) pairs)


def judge(version: int, canary: Sequence[tuple[float, int]], baseline_version: int,
          baseline: Sequence[tuple[float, int]], imagined: float | None, config: CanaryConfig,
          rng: np.random.Generator, best: Baseline | None = None) -> Verdict:
    """The verdict on canary ``version`` from its episodes and its baseline's ((ret, steps) pairs); ``best``:
    the best trusted version's, a second baseline for the return check (None when it is the baseline)."""
    returns = [ret for ret, _ in canary]
    mean = float(np.mean(returns))
    realised = reward_per_step(canary)
    values: dict[str, object] = {
        "version": version, "episodes": len(canary), "returns": [round(r, 4) for r in returns],
        "return_mean": mean, "reward_per_step": realised, "baseline_version": baseline_version,
        "baseline_episodes": len(baseline), "min_baseline_episodes": config.min_baseline_episodes,
        "best_baseline_version": None if best is None else best[0],
        "best_baseline_episodes": None if best is None else len(best[1]),
        "confidence": config.confidence, "return_margin": config.return_margin,
        "return_tolerance": config.return_tolerance,
        "over_optimism_share": config.over_optimism_share, "imagined_reward_per_step": imagined,
    }
    checks = {"return_check": _return_check(returns, baseline_version, baseline, config, rng, values, "")}
    if best is not None:
        checks["best_baseline_return_check"] = _return_check(returns, *best, config, rng, values, BEST)
    checks["over_optimism_check"] = _optimism_check(realised, imagined, baseline_version, baseline, config, values)
    values.update({name: outcome for name, (outcome, _) in checks.items()})
    outcomes = [outcome for outcome, _ in checks.values()]
    text = "; ".join(line for _, line in checks.values())
    if FAILED in outcomes:
        return Verdict(False, "; ".join(line for outcome, line in checks.values() if outcome == FAILED), values)
    if PASSED in outcomes:
        return Verdict(True, text, values)
    if baseline_version == 0:
        return Verdict(True, f"{text}; not judged, passed as the first learned policy (the initial "
                             "policy is no safer fallback)", values)
    return Verdict(False, f"cannot be judged: {text}", values)


# Prefix of the best trusted version's figures in a verdict's values (the previous version's have none).
BEST = "best_baseline_"


def cannot_pass(canary: Sequence[tuple[float, int]], baseline: Sequence[tuple[float, int]], config: CanaryConfig,
                rng: np.random.Generator, best: Baseline | None = None) -> bool:
    """Whether a canary with fewer than ``config.episodes`` complete episodes fails the return check against
    ``baseline`` or ``best`` (as :func:`judge` takes them) even if each episode still to come scored
    that baseline's best return (``rng`` as :func:`judge` gets it, so both draw the same thresholds)."""
    if not canary or len(canary) >= config.episodes:
        return False
    returns = [ret for ret, _ in canary]
    for episodes in (baseline, *([] if best is None else [best[1]])):
        if len(episodes) >= config.min_baseline_episodes:
            threshold = return_threshold(episodes, config, rng)["return_threshold"]
            if _best_case_mean(returns, episodes, config) < threshold:
                return True
    return False


def _best_case_mean(returns: Sequence[float], baseline: Sequence[tuple[float, int]], config: CanaryConfig) -> float:
    best = max(ret for ret, _ in baseline)
    return (sum(returns) + (config.episodes - len(returns)) * best) / config.episodes


def return_threshold(baseline: Sequence[tuple[float, int]], config: CanaryConfig,
                     rng: np.random.Generator) -> dict[str, float]:
    """The baseline's figures and the canary's return threshold (needs ``min_baseline_episodes``)."""
    previous = np.array([ret for ret, _ in baseline], dtype=np.float64)
    low, high = bootstrap_interval(previous, config.confidence, config.bootstrap_samples, rng)
    spread, centre = float(previous.std(ddof=1)), float(previous.mean())
    margin = max(config.return_margin * spread, config.return_tolerance * abs(centre))
    return {"baseline_mean": centre, "baseline_std": spread, "baseline_low": low, "baseline_high": high,
            "margin": margin, "return_threshold": low - margin}


def _named(figures: dict, prefix: str) -> dict:
    """The previous version's figures as they are; the best trusted version's as ``best_baseline_mean``, ..."""
    return {prefix + key.removeprefix("baseline_") if prefix else key: value for key, value in figures.items()}


def _return_check(returns: Sequence[float], baseline_version: int, baseline: Sequence[tuple[float, int]],
                  config: CanaryConfig, rng: np.random.Generator, values: dict, prefix: str) -> tuple[str, str]:
    """The canary's mean return against one baseline's threshold; judged early (fewer than ``config.episodes``
    returns, as :func:`cannot_pass` allows), its best case: the rest counted as that baseline's best."""
    which = f"v{baseline_version}'s" + (" (the best trusted)" if prefix else "")
    values.update(_named(dict.fromkeys(("baseline_mean", "baseline_std", "baseline_low", "baseline_high", "margin",
                                        "return_threshold")), prefix))
    if len(baseline) < config.min_baseline_episodes:
        return NOT_JUDGED, (f"return not judged: v{baseline_version} has {len(baseline)} complete episodes, "
                            f"{config.min_baseline_episodes} needed")
    figures = return_threshold(baseline, config, rng)
    values.update(_named(figures, prefix))
    threshold, margin = figures["return_threshold"], figures["margin"]
    where = (f"{which} {config.confidence:.0%} interval low {figures['baseline_low']:.2f} (mean "
             f"{figures['baseline_mean']:.2f}, {len(baseline)} episodes) - margin {margin:.2f} (max of "
             f"{config.return_margin:g} std {figures['baseline_std']:.2f}, {config.return_tolerance:.0%} of the mean)")
    if len(returns) < config.episodes:
        mean = values[f"{prefix}best_case_mean"] = _best_case_mean(returns, baseline, config)
        what = (f"return at best {mean:.2f} after {len(returns)}/{config.episodes} episodes (the rest counted as "
                f"v{baseline_version}'s best)")
    else:
        mean = float(np.mean(returns))
        what = f"return {mean:.2f}"
    if mean < threshold:
        return FAILED, f"{what} < {threshold:.2f} = {where}"
    return PASSED, f"{what} >= {threshold:.2f} = {where}"


def _optimism_check(realised: float | None, imagined: float | None, baseline_version: int,
                    baseline: Sequence[tuple[float, int]], config: CanaryConfig, values: dict) -> tuple[str, str]:
    scale = reward_per_step(baseline)
    values.update({"over_optimism": None, "baseline_reward_per_step": scale, "over_optimism_limit": None})
    if imagined is None:
        return NOT_JUDGED, "over-optimism not judged: no imagined_reward_per_step in the manifest"
    if realised is None:
        return NOT_JUDGED, "over-optimism not judged: the canary's episodes have no rewarded step"
    if scale is None:
        return NOT_JUDGED, f"over-optimism not judged: v{baseline_version} has no rewarded step to scale the limit"
    over, limit = imagined - realised, config.over_optimism_share * abs(scale)
    values.update({"over_optimism": over, "over_optimism_limit": limit})
    line = (f"over-optimism {over:.3f} = imagined {imagined:.3f} - realised {realised:.3f} reward/step (limit "
            f"{limit:.3f} = {config.over_optimism_share:g} x |v{baseline_version}'s {scale:.3f}|)")
    return (FAILED if over > limit else PASSED), line
