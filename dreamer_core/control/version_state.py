"""What a robot remembers about policy versions across restarts.

One JSON file per robot, ``<state_dir>/<robot_id>.json``, written atomically: the
highest version it ever accepted (older bundles are refused, so a restart cannot
bring an old policy back), the versions it rejected (never accepted again), and
the operator's pin (a pinned or rolled-back version stays in charge after a restart), and
what the canary needs (docs/robot_config.md#canary): the versions trusted (passed a canary or
forced by an operator), the canary in progress with its baseline, and the returns of each
version's recent complete episodes and of the best trusted version (the canary's second baseline),
so a restart forgets neither a verdict nor its evidence.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pydantic

from dreamer_core.io import atomic_write


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/dreamer_ros`` (``~/.local/state/dreamer_ros``): per user, outside any checkout."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "dreamer_ros"


def state_file(state_dir: Path, robot_id: str) -> Path:
    return Path(state_dir) / f"{robot_id}.json"


class VersionStateError(ValueError):
    """The state file exists but cannot be trusted; the message names the file and the key."""


# Versions whose recent episodes are kept (the least recently recorded ones are dropped first).
KEPT_VERSIONS = 10


class _Record(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)


class EpisodeRecord(_Record):
    """One complete episode: its return and rows (as dreamer_core.storage.episodes counts them)."""

    ret: pydantic.FiniteFloat
    steps: pydantic.PositiveInt


class VersionEpisodes(_Record):
    version: pydantic.NonNegativeInt
    episodes: list[EpisodeRecord] = []  # oldest first


class CanaryRecord(_Record):
    """The canary in progress: the version on trial and the trusted version it is compared with."""

    version: pydantic.PositiveInt
    baseline: pydantic.NonNegativeInt
    imagined_reward_per_step: pydantic.FiniteFloat | None = None  # from its manifest's evaluation


class VersionState(_Record):
    robot_id: str
    highest_accepted: pydantic.NonNegativeInt = 0
    rejected: list[pydantic.PositiveInt] = []
    pinned: pydantic.NonNegativeInt | None = None  # 0 = the initial policy
    trusted: list[pydantic.PositiveInt] = []  # passed a canary or forced (v0 always is)
    last_trusted: pydantic.NonNegativeInt = 0  # the trusted version that ran last: a new canary's baseline
    canary: CanaryRecord | None = None
    returns: list[VersionEpisodes] = []  # least recently recorded version first
    # The trusted version with the highest mean return so far and its episodes: every canary's second baseline
    # (kept apart from ``returns``, which forgets versions not run for a while).
    best: VersionEpisodes | None = None
    last_verdict: str = ""

    def episodes_of(self, version: int) -> list[EpisodeRecord]:
        return next((v.episodes for v in self.returns if v.version == version), [])

    def record(self, version: int, ret: float, steps: int, keep: int) -> None:
        """Add a complete episode of ``version``, keeping its newest ``keep`` and :data:`KEPT_VERSIONS` versions."""
        entry = next((v for v in self.returns if v.version == version), None) or VersionEpisodes(version=version)
        entry.episodes = [*entry.episodes, EpisodeRecord(ret=ret, steps=steps)][-keep:]
        self.returns = [*(v for v in self.returns if v.version != version), entry][-KEPT_VERSIONS:]

    def note_best(self, version: int, min_episodes: int) -> None:
        """After an episode of trusted ``version``: it becomes :attr:`best` when it has ``min_episodes`` kept
        episodes and a higher mean return than the best so far (the best's own episodes are kept current)."""
        episodes = self.episodes_of(version)
        if len(episodes) < min_episodes:
            return
        best = self.best
        if best is None or best.version == version or _mean(episodes) > _mean(best.episodes):
            self.best = VersionEpisodes(version=version, episodes=list(episodes))

    @classmethod
    def load(cls, path: Path, robot_id: str) -> VersionState:
        """The state in ``path``, or a fresh one when the file does not exist."""
        if not path.exists():
            return cls(robot_id=robot_id)
        try:
            state = cls.model_validate_json(path.read_bytes())
        except pydantic.ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
                                 for e in exc.errors())
            raise VersionStateError(
                f"{path}: {problems}. This file guards against old policies coming back; fix it, or "
                "delete it to forget every accepted and rejected version (docs/nodes.md#policy-versions)"
            ) from None
        except OSError as exc:
            raise VersionStateError(f"{path}: cannot read ({exc})") from None
        if state.robot_id != robot_id:
            raise VersionStateError(f"{path}: robot_id {state.robot_id!r} is not this robot's {robot_id!r}")
        return state

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.model_dump(), indent=2, sort_keys=True).encode())


def _mean(episodes: list[EpisodeRecord]) -> float:
    return sum(e.ret for e in episodes) / len(episodes)
