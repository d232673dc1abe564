"""Which ended episodes measure their policy: the one rule the session report, the verdict and
``bench/a1_learning.py`` share.

An episode is **complete** when it ran until the robot fell (its last row is terminal) or until
the time limit: the controller ends an episode at its limit with the ``episode_steps``-th row
(rows counted as the replay store counts them, the ``is_first`` and ``is_last`` rows included).
Any other ending cuts it short for a reason that is not its policy's: the control node stopping
(a shutdown closes the running episode), a fault or watchdog hold, a policy swap. A **cut**
episode's return is that of a shorter episode (a 784-step episode cut by the shutdown collects
about 78% of what a full 1000-step one does) and would read as a regression, so cut episodes are
listed and drawn apart but left out of every mean.

The rule needs nothing the replay rows do not carry (``is_last``, ``is_terminal``, the row
count). What it cannot tell apart: a ``policy_fault`` (the policy returned NaN or a wrong shape),
which the canary counts against its policy, is cut here like any other hold; and an episode cut on
the very tick its limit fell due has run its full time and counts as complete.
"""

from __future__ import annotations

from dreamer_core.storage.episodes import Episode


def is_complete(episode: Episode, episode_steps: int) -> bool:
    """Whether ``episode`` ended by a fall or at the time limit of ``episode_steps`` rows (see the
    module docstring). One longer than the limit (a limit lowered since) has run its full time too;
    one whose first rows were evicted (``started`` False) or that has no ``is_last`` row is cut."""
    if episode_steps < 1:
        raise ValueError(f"episode_steps must be >= 1, got {episode_steps}")
    return episode.complete and episode.started and (episode.terminal or episode.steps >= episode_steps)
