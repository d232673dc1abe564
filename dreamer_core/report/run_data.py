"""Everything the session report reads from a run directory, each source read on its own.

A source that is missing or unreadable never stops the report: it is left empty and
``RunData.notes`` says why, so the page can say "no data: <why>" where a plot would be.

Sources (paths from :class:`RunLayout`): the replay store (episodes and sessions), the learner's
``learner_state.json`` (every gate decision and the imagined reward per step of promoted
versions), the bundles' manifests (what the learner measured about each promoted version), the
learner's TensorBoard events (losses), and what dreamer-stack recorded itself: ``/diagnostics``
snapshots (control timing histograms), the robot's policy events and the parameters it gave the
control node (the robot config: the control rate that turns steps into robot-minutes, and the
episode's time limit that tells complete episodes from cut ones), and the simulator's forward
travel per episode (``travel_log``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dreamer_core.deploy.bundle import load_bundle_file
from dreamer_core.deploy.manifest import Manifest, parse_manifest
from dreamer_core.report.complete_episodes import is_complete
from dreamer_core.report.run_layout import RunLayout
from dreamer_core.report.tensorboard_scalars import Series, read_scalars
from dreamer_core.report.travel_log import Travel, forward_during
from dreamer_core.robots.config import load_robot_config
from dreamer_core.storage import ReplayStore, ReplayStoreError, SessionInfo
from dreamer_core.storage.episodes import Episode, episodes

# Errors a damaged or half-written source may raise; anything else is a bug and propagates.
READ_ERRORS = (OSError, ValueError, KeyError, TypeError, ReplayStoreError)  # a ConfigError is a ValueError


@dataclass(frozen=True)
class Decision:
    """One gate decision of the learner on a candidate version (a ``PromotionRecord`` of the learner
    state): the measured values, the thresholds they were held against and the skill curves per k."""

    version: int
    update: int
    time: float
    promoted: bool
    reasons: list[str]
    summary: str  # one line: the reasons, or what it passed with
    metrics: dict[str, float]
    thresholds: dict[str, float]
    curves: dict[str, list[float]]  # skill per k: skill_reward, skill_continue (held-out), *_train


@dataclass(frozen=True)
class PolicyEvent:
    """A decision of the robot about a policy version (canary_started, rolled_back, ...)."""

    time: float
    version: int
    event: str
    reason: str
    baseline_version: int | None = None  # a canary verdict's: the version the candidate was judged against


@dataclass
class RunData:
    layout: RunLayout
    episodes: list[Episode] = field(default_factory=list)  # ended by an is_last row (complete or cut), store order
    sessions: list[SessionInfo] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    predicted_reward: dict[int, float] = field(default_factory=dict)  # learner state: imagined reward/step
    learner_updates: int | None = None  # learner state: updates made (None: no learner state)
    actor_warmup_updates: int = 0  # learner state: the preset's updates before the actor trains
    manifests: dict[int, Manifest] = field(default_factory=dict)  # promoted bundles by version
    scalars: dict[str, Series] = field(default_factory=dict)  # learner TensorBoard
    control: list[tuple[float, dict[str, str]]] = field(default_factory=list)  # (time, control diagnostics)
    events: list[PolicyEvent] = field(default_factory=list)
    control_rate_hz: float | None = None  # of the run's robot config (steps -> robot-minutes)
    episode_steps: int | None = None  # of the run's robot config: an episode's time limit in rows
    travel: list[Travel] = field(default_factory=list)  # sim_robot's forward travel per episode
    notes: dict[str, str] = field(default_factory=dict)  # source -> why it is empty

    def is_complete(self, episode: Episode) -> bool:
        """Whether ``episode`` counts in the means (``complete_episodes.is_complete``); without the run's
        robot config the time limit is unknown and every ended episode counts, as the page says."""
        return self.episode_steps is None or is_complete(episode, self.episode_steps)

    def complete_episodes(self) -> list[Episode]:
        return [e for e in self.episodes if self.is_complete(e)]

    def cut_episodes(self) -> list[Episode]:
        return [e for e in self.episodes if not self.is_complete(e)]

    def single_version_episodes(self) -> dict[int, list[Episode]]:
        """Complete episodes run by one version from start to end, by version (an episode with a swap
        mid-way, written by an older controller, belongs to two versions)."""
        by_version: dict[int, list[Episode]] = defaultdict(list)
        for e in self.complete_episodes():
            if not e.mixed_versions:
                by_version[e.policy_version].append(e)
        return dict(sorted(by_version.items()))

    def complete_returns_by_version(self) -> dict[int, list[float]]:
        """What the verdict compares: the returns of each version's complete single-version episodes."""
        return {v: [e.ret for e in group] for v, group in self.single_version_episodes().items()}

    def forward_m(self, episode: Episode) -> float | None:
        """The simulator's forward travel during ``episode`` (m); None without a travel log entry for it."""
        return forward_during(self.travel, episode.start_stamp, episode.end_stamp)

    def imagined_reward_per_step(self) -> dict[int, float]:
        """The learner's imagined reward per step per promoted version: the manifest's
        ``evaluation.imagined_reward_per_step`` where recorded, else the learner state's."""
        imagined = dict(self.predicted_reward)
        for version, manifest in self.manifests.items():
            value = manifest.evaluation.get("imagined_reward_per_step")
            if isinstance(value, float):
                imagined[version] = value
        return imagined


def load_run(run_dir: str | Path) -> RunData:
    """Read every source of ``run_dir``; see the module docstring."""
    layout = RunLayout(Path(run_dir))
    data = RunData(layout)
    for source, reader in (("replay", _read_replay), ("learner state", _read_learner_state),
                           ("bundles", _read_bundles), ("learner TensorBoard", _read_scalars),
                           ("diagnostics", _read_diagnostics), ("policy events", _read_events),
                           ("robot config", _read_robot_config), ("travel log", _read_travel)):
        try:
            reader(data)
        except READ_ERRORS as exc:
            data.notes[source] = f"unreadable: {type(exc).__name__}: {exc}"
    return data


def _exists(data: RunData, source: str, path: Path) -> bool:
    if path.exists():
        return True
    data.notes[source] = f"{path} does not exist"
    return False


def _read_replay(data: RunData) -> None:
    if not _exists(data, "replay", data.layout.replay / "store.json"):
        return
    with ReplayStore(data.layout.replay, readonly=True) as store:
        data.sessions = store.sessions()
        data.episodes = [e for e in episodes(store.iter_steps()) if e.complete]  # the open ones are still running


def _read_learner_state(data: RunData) -> None:
    if not _exists(data, "learner state", data.layout.learner_state):
        return
    state = json.loads(data.layout.learner_state.read_text())
    data.decisions = [Decision(version=int(d["version"]), update=int(d["update"]), time=float(d["time"]),
                               promoted=bool(d["promoted"]), reasons=list(d.get("reasons", [])),
                               summary=str(d.get("summary", "; ".join(d.get("reasons", [])))),
                               metrics=_numbers(d.get("metrics", {})), thresholds=_numbers(d.get("thresholds", {})),
                               curves={k: [_number(x) for x in v] for k, v in d.get("curves", {}).items()})
                      for d in state.get("promotions", [])]
    data.predicted_reward = {int(v): float(r) for v, r in state.get("predicted_reward", {}).items()}
    data.learner_updates = int(state.get("updates", 0))
    data.actor_warmup_updates = int(state.get("actor_warmup_updates", 0))


def _number(value) -> float:
    """A JSON number of the learner state; ``null`` is how a non-finite value was written."""
    return float("nan") if value is None else float(value)


def _numbers(values: dict) -> dict[str, float]:
    return {k: _number(v) for k, v in values.items()}


def _read_bundles(data: RunData) -> None:
    if not _exists(data, "bundles", data.layout.bundles):
        return
    for path in sorted(data.layout.bundles.glob("policy_v*.bundle")):
        try:
            manifest = parse_manifest(load_bundle_file(path).manifest_json)
        except READ_ERRORS as exc:  # a damaged bundle (BundleRejected is a ValueError): the others still count
            data.notes.setdefault("bundles", f"{path.name} unreadable: {exc}")
            continue
        data.manifests[manifest.policy_version] = manifest


def _read_scalars(data: RunData) -> None:
    if _exists(data, "learner TensorBoard", data.layout.learner_tensorboard):
        data.scalars = read_scalars(data.layout.learner_tensorboard)


def _json_lines(path: Path) -> list[dict]:
    """The records of a JSON-lines file; a torn last line (the writer stopped mid-line) is skipped."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _read_diagnostics(data: RunData) -> None:
    if not _exists(data, "diagnostics", data.layout.diagnostics_log):
        return
    for record in _json_lines(data.layout.diagnostics_log):
        control = record["nodes"].get("control_node")
        if control:
            data.control.append((float(record["time"]), control))


def _read_events(data: RunData) -> None:
    if not _exists(data, "policy events", data.layout.policy_events_log):
        return
    data.events = [PolicyEvent(time=float(r["time"]), version=int(r["version"]), event=str(r["event"]),
                               reason=str(r.get("reason", "")), baseline_version=_baseline_version(r))
                   for r in _json_lines(data.layout.policy_events_log)]


def _baseline_version(record: dict) -> int | None:
    """The `baseline_version` among a policy event's values (a JSON object in a string), if any."""
    try:
        values = json.loads(record.get("values") or "{}")
    except json.JSONDecodeError:
        return None
    version = values.get("baseline_version") if isinstance(values, dict) else None
    return int(version) if isinstance(version, int) and not isinstance(version, bool) else None


def _read_robot_config(data: RunData) -> None:
    """The control rate and episode length of the robot config dreamer-stack gave the control node
    (params/control_node.*.yaml)."""
    for path in sorted(data.layout.params.glob("control_node.*.yaml")):
        params = yaml.safe_load(path.read_text())["/**"]["ros__parameters"]
        if "robot_config" in params:
            config = load_robot_config(params["robot_config"])
            data.control_rate_hz, data.episode_steps = config.control_rate_hz, config.episode_steps
            return
    data.notes["robot config"] = f"no control_node parameters with robot_config in {data.layout.params}"


def _read_travel(data: RunData) -> None:
    if _exists(data, "travel log", data.layout.travel_log):
        data.travel = [Travel(float(r["start"]), float(r["end"]), float(r["forward_m"]))
                       for r in _json_lines(data.layout.travel_log)]
