"""The one-line verdict of a run: did a learned policy version beat the initial policy (v0)?

From the real returns of complete episodes per version (``complete_episodes``): the learned
version with the highest mean return among those with at least ``MIN_EPISODES`` episodes is
compared with v0 by the ratio and the difference of the mean returns, with a percentile-bootstrap
interval of the difference (each version's episodes resampled on their own; seeded, so the same
data always gives the same line). It *beat* v0 when the whole interval lies above 0. The session
report opens with this line, ``dreamer-report`` and ``bench/a1_learning.py`` print it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Fewer complete episodes of a version than this and no interval can be drawn around its mean.
MIN_EPISODES = 2
RESAMPLES = 4000
INTERVAL_LEVEL = 0.95
SEED = 0


@dataclass(frozen=True)
class Verdict:
    beat: bool | None  # None: nothing to compare (no learned version ran, or too few episodes)
    line: str


def bootstrap_difference(learned: Sequence[float], initial: Sequence[float], rng: np.random.Generator,
                         resamples: int = RESAMPLES, level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap interval at ``level`` of mean(``learned``) − mean(``initial``)."""
    a, b = np.asarray(learned, dtype=np.float64), np.asarray(initial, dtype=np.float64)
    differences = (a[rng.integers(0, len(a), (resamples, len(a)))].mean(axis=1)
                   - b[rng.integers(0, len(b), (resamples, len(b)))].mean(axis=1))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return float(low), float(high)


def _ratio(learned: float, initial: float) -> str:
    return f"{learned / initial:.2f}x" if initial > 0 else "ratio n/a (v0 mean <= 0)"


def verdict(returns_by_version: Mapping[int, Sequence[float]]) -> Verdict:
    """The verdict line from the returns of complete episodes by version (v0: the initial policy)."""
    initial = list(returns_by_version.get(0, []))
    learned = {v: list(r) for v, r in sorted(returns_by_version.items()) if v > 0 and len(r) > 0}
    counts = ", ".join(f"v{v} {len(r)}" for v, r in learned.items())
    if len(initial) < MIN_EPISODES:
        return Verdict(None, f"verdict: too few complete episodes to tell: v0 has {len(initial)}"
                             f"{', ' + counts if counts else ''} (need >= {MIN_EPISODES} each)")
    v0_mean = float(np.mean(initial))
    if not learned:
        return Verdict(None, f"verdict: no learned version ran: v0 mean return {v0_mean:.1f} over {len(initial)} "
                             "complete episodes, no complete episode of v1 or later")
    judged = {v: r for v, r in learned.items() if len(r) >= MIN_EPISODES}
    if not judged:
        return Verdict(None, f"verdict: too few complete episodes to tell: v0 has {len(initial)}, {counts} "
                             f"(need >= {MIN_EPISODES} each)")
    best = max(judged, key=lambda v: (float(np.mean(judged[v])), v))
    mean = float(np.mean(judged[best]))
    low, high = bootstrap_difference(judged[best], initial, np.random.default_rng(SEED))
    beat = low > 0
    head = f"v{best} beat v0" if beat else f"no learned version beat v0 (best: v{best})"
    return Verdict(beat, f"verdict: {head}: mean return {mean:.1f} vs {v0_mean:.1f} = {_ratio(mean, v0_mean)}, "
                         f"{mean - v0_mean:+.1f} ({INTERVAL_LEVEL:.0%} interval {low:+.1f} to {high:+.1f}) over "
                         f"{len(judged[best])} and {len(initial)} complete episodes")
