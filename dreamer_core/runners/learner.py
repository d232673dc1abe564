"""The offboard learner loop: replay → world model + imagination → gated, signed policy bundles.

`LearnerRunner.iterate()` does a bounded amount of work and returns the bundles to
publish, so the learner node (or any script) drives it from its own loop and
stays responsive. It trains only on blocks of episodes that are not held out; every
candidate is judged on the held-out ones (docs/model_trust.md). Everything it needs
to resume (the agent and the typed :class:`LearnerState`: policy version, decisions,
the robot's verdicts, the imagination horizon) is one checkpoint file, written
atomically under `run_dir`; `learner_state.json` beside it is a readable summary
derived from it, never read back.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from dreamer_core.algorithms.agent import Agent, read_checkpoint
from dreamer_core.algorithms.trust import (
    TrustReport,
    decide,
    measure,
    over_optimism,
    real_reward_by_version,
    too_little_data,
)
from dreamer_core.algorithms.trust.running import PromotedModels
from dreamer_core.algorithms.trust.value_check import value_against_real_return
from dreamer_core.config import load_agent_config
from dreamer_core.deploy import PolicyBundle, build_bundle, key_fingerprint, load_private_key, save_bundle_file
from dreamer_core.deploy.export import export_agent
from dreamer_core.deploy.runtime import spec_difference
from dreamer_core.io import atomic_write
from dreamer_core.runners.decision_log import log_decision, log_policy_event
from dreamer_core.runners.learner_settings import LearnerSettings
from dreamer_core.runners.offline import OfflineBudget
from dreamer_core.runners.train_ratio import TrainRatio
from dreamer_core.spec import PolicySpec
from dreamer_core.storage import NotEnoughDataError, ReplayStore

# Promotion decisions, robot verdicts and predicted rewards kept in the learner state (older ones
# are in the log and TensorBoard); bounds the checkpoint of a learner that runs for months.
KEPT_RECORDS = 100
# The robot's verdicts after which a version is never offered again by this learner.
REJECTING_EVENTS = ("rolled_back", "blocked")
REJECTED_SUFFIX = ".rejected"


class PromotionRecord(BaseModel):
    """One gate decision on a candidate policy, promoted or held back, with what it was judged on."""

    version: int
    update: int
    time: float
    promoted: bool
    reasons: list[str]  # why it was held back (empty when promoted)
    summary: str  # one line: the reasons, or what it passed with
    metrics: dict[str, float]
    thresholds: dict[str, float]
    curves: dict[str, list[float]] = Field(default_factory=dict)  # skill per k (held-out and training)


class PolicyEventRecord(BaseModel):
    """A decision the robot published about a policy version (dreamer_msgs/PolicyEvent)."""

    version: int
    event: str  # canary_started | canary_passed | rolled_back | forced | blocked
    reason: str
    values: dict[str, float]  # the numeric values of its values_json
    time: float  # when the learner recorded it
    update: int


class LearnerState(BaseModel):
    """What the learner adds to the agent checkpoint (format: ``LearnerState.model_dump()``)."""

    model_config = ConfigDict(extra="forbid")

    # The policy spec the agent is trained for (RobotConfig.policy_spec().to_dict()).
    spec: dict
    policy_version: int = 0  # last promoted version; never reused
    last_export_update: int = 0
    promotions: list[PromotionRecord] = Field(default_factory=list)
    promoted: int = 0  # candidates promoted so far (all time)
    held_back: int = 0  # candidates held back so far (all time)
    # Imagined mean reward per step of each promoted version, held against what the robot then collects.
    predicted_reward: dict[int, float] = Field(default_factory=dict)
    # The robot's verdicts about versions (canary passed, rolled back, forced, blocked).
    policy_events: list[PolicyEventRecord] = Field(default_factory=list)
    # Versions the robot rejected (rolled back or blocked): never offered again.
    rejected: list[int] = Field(default_factory=list)
    # The held-out rule the run trains with: a higher fraction or other blocks would count trained-on data
    # as held out. States written before blocks existed held out whole episodes (None).
    held_out_fraction: float
    held_out_block_steps: int | None = None
    # The imagination horizon in use (the preset's unless trust.horizon is "skill").
    horizon: int
    # Updates made beyond the train ratio while the robot collected nothing (all time); the train
    # ratio paces the others.
    offline_updates: int = 0

    def record(self, decision: PromotionRecord) -> None:
        """Append a decision and count it, keeping the newest :data:`KEPT_RECORDS`."""
        self.promotions = [*self.promotions, decision][-KEPT_RECORDS:]
        if decision.promoted:
            self.promoted += 1
        else:
            self.held_back += 1

    def record_event(self, event: PolicyEventRecord) -> bool:
        """Append a robot verdict (newest :data:`KEPT_RECORDS` kept); True when it rejects a version
        not rejected before."""
        self.policy_events = [*self.policy_events, event][-KEPT_RECORDS:]
        if event.event in REJECTING_EVENTS and event.version not in self.rejected:
            self.rejected = sorted([*self.rejected, event.version])[-KEPT_RECORDS:]
            return True
        return False

    def predict(self, version: int, reward_per_step: float) -> None:
        """Remember a promoted version's imagined reward per step, keeping the newest :data:`KEPT_RECORDS`."""
        kept = sorted({**self.predicted_reward, version: reward_per_step}.items())[-KEPT_RECORDS:]
        self.predicted_reward = dict(kept)


def resume_mismatches(payload: dict, robot_config, preset: str) -> list[str]:
    """Ways a checkpoint payload (:func:`read_checkpoint`) differs from the run's robot config and
    preset, each naming both values."""
    problems = []
    dims, want = (payload["obs_dim"], payload["act_dim"]), (robot_config.obs_dim, robot_config.act_dim)
    if dims != want:
        problems.append(f"obs_dim/act_dim: checkpoint {dims[0]}/{dims[1]}, robot config "
                        f"{robot_config.robot_id!r} {want[0]}/{want[1]}")
    have_preset, want_preset = payload["config"]["name"], load_agent_config(preset).name
    if have_preset != want_preset:
        problems.append(f"preset: checkpoint {have_preset!r}, settings {want_preset!r}")
    learner = payload["extra"]["learner"]
    problems += spec_mismatch("checkpoint", PolicySpec.from_dict(learner["spec"]), robot_config.policy_spec())
    trust = robot_config.trust
    if trust.held_out_fraction > learner["held_out_fraction"]:
        problems.append(f"trust.held_out_fraction: checkpoint {learner['held_out_fraction']}, robot config "
                        f"{trust.held_out_fraction} (higher would count data this model trained on as held out; "
                        "it may only shrink)")
    if trust.held_out_block_steps != learner.get("held_out_block_steps"):
        problems.append(f"trust.held_out_block_steps: checkpoint {learner.get('held_out_block_steps')}, robot config "
                        f"{trust.held_out_block_steps} (other blocks would count data this model trained on as "
                        "held out; set the checkpoint's value (null: whole episodes) or start a new run_dir)")
    return problems


def store_mismatches(store: ReplayStore, obs_dim: int, act_dim: int, spec: PolicySpec) -> list[str]:
    """Ways a replay store's layout differs from the policy spec the learner trains for."""
    problems = []
    if (store.obs_dim, store.act_dim) != (obs_dim, act_dim):
        problems.append(f"obs_dim/act_dim: replay store {store.obs_dim}/{store.act_dim}, "
                        f"learner {obs_dim}/{act_dim}")
    if store.spec is not None:  # stores created without a spec (older, or imported bags) have none
        problems += spec_mismatch("replay store", store.spec, spec)
    return problems


def spec_mismatch(source: str, spec: PolicySpec, robot_spec: PolicySpec) -> list[str]:
    """``[]`` when the specs hash equal, else one line naming the first difference and both hashes."""
    if spec.hash() == robot_spec.hash():
        return []
    return [f"policy spec hash: {source} {spec.hash()[:12]}, robot config {robot_spec.hash()[:12]} "
            f"({spec_difference(spec, robot_spec)})"]


class LearnerRunner:
    """Trains one agent from one replay store and emits promoted policy bundles."""

    def __init__(self, robot_config, settings: LearnerSettings, log=print):
        self.robot = robot_config
        self.trust = robot_config.trust
        self.settings = settings
        self.log = log
        torch.set_num_threads(settings.torch_threads)
        if settings.nice:
            os.nice(settings.nice)
        self.device = "cuda" if settings.device == "auto" and torch.cuda.is_available() else (
            "cpu" if settings.device == "auto" else settings.device)
        self.run_dir = Path(settings.run_dir)
        (self.run_dir / "bundles").mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.run_dir / "agent.ckpt"
        self.summary_path = self.run_dir / "learner_state.json"
        self.private_key = load_private_key(settings.private_key) if settings.private_key else None
        if self.private_key is None:
            log("WARNING: no private_key: bundles are UNSIGNED and only a robot in development mode takes them")
        else:  # the robot logs the fingerprint of the key it accepts: compare the two
            log(f"signing with key {key_fingerprint(self.private_key.public_key())} ({settings.private_key})")
        self.spec = robot_config.policy_spec()
        self.store: ReplayStore | None = None
        self.rng = np.random.default_rng(settings.seed)
        if self.checkpoint_path.is_file():
            self.agent, self.state, self.promoted = self._resume()
            log(f"resumed from {self.checkpoint_path}: {self.agent.updates} updates, "
                f"policy version {self.state.policy_version}, imagination horizon {self.state.horizon}")
        else:
            config = load_agent_config(settings.preset)
            self.agent = Agent(robot_config.obs_dim, robot_config.act_dim, config, device=self.device,
                               seed=settings.seed)
            self.state = LearnerState(spec=self.spec.to_dict(), held_out_fraction=self.trust.held_out_fraction,
                                      held_out_block_steps=self.trust.held_out_block_steps, horizon=config.horizon)
            self.promoted = PromotedModels()  # world models of promoted versions, for the gate's paired check
        # A lowered fraction only releases held-out blocks for training (a raised one was refused by _resume).
        self.state.held_out_fraction = self.trust.held_out_fraction
        # The preset's horizon when it is fixed; the one chosen last (within the current bounds) otherwise.
        t = self.trust
        self.state.horizon = self.agent.config.horizon if t.horizon == "fixed" else min(
            max(self.state.horizon, t.horizon_min), t.horizon_max)
        self.agent.horizon = self.state.horizon
        self.train_ratio = TrainRatio(self.agent.config)
        self.offline = OfflineBudget(log=log)
        log(f"compute precision {self.agent.precision.name}: {self.agent.precision.reason}")
        problems = trust_problems(self.trust, self.agent.config)
        if problems:
            raise ValueError("the robot config's trust section does not fit the preset:\n  " + "\n  ".join(problems))
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def _resume(self) -> tuple[Agent, LearnerState, PromotedModels]:
        """The agent, learner state and promoted models of the checkpoint, refused when they do not fit this run
        (a checkpoint from before the paired check has no promoted models: the next candidate is judged as a
        first one)."""
        payload = read_checkpoint(self.checkpoint_path, self.device)
        if "learner" not in payload["extra"]:
            raise ValueError(f"{self.checkpoint_path} is an agent checkpoint without learner state; "
                             "it was not written by a learner: move it away or use another run_dir")
        problems = resume_mismatches(payload, self.robot, self.settings.preset)
        if problems:
            raise ValueError(
                f"refusing to resume from {self.checkpoint_path}: it does not fit this run:\n  "
                + "\n  ".join(problems)
                + "\nStart it with the robot config and preset the run began with, or use a new run_dir."
            )
        return (Agent.from_checkpoint(payload, self.device), LearnerState.model_validate(payload["extra"]["learner"]),
                PromotedModels(payload["extra"].get("promoted_models")))

    # -- data ------------------------------------------------------------------------

    def _open_store(self) -> bool:
        if self.store is None:
            if not (Path(self.settings.replay_dir) / "store.json").is_file():
                return False
            store = ReplayStore(self.settings.replay_dir, readonly=True)
            problems = store_mismatches(store, self.agent.obs_dim, self.agent.act_dim, self.spec)
            if problems:
                store.close()
                raise ValueError(f"replay store {self.settings.replay_dir} does not fit the learner's policy spec:"
                                 "\n  " + "\n  ".join(problems)
                                 + "\nPoint replay_dir at the store this robot config writes.")
            self.store = store
        self.offline.observe(self.store.refresh())
        return True

    @property
    def replay_steps(self) -> int:
        """Real steps in the replay store (what the train ratio counts)."""
        return 0 if self.store is None else self.store.num_steps

    @property
    def updates(self) -> int:
        return self.agent.updates

    def ready(self) -> bool:
        """True once the store holds `min_steps` real steps (the robot runs its initial policy meanwhile)."""
        return self._open_store() and self.store.num_steps >= self.settings.min_steps

    def updates_owed(self) -> int:
        """Updates the train ratio allows for the data collected so far (offline updates not counted)."""
        return self.train_ratio.owed(self.replay_steps, self.agent.updates - self.state.offline_updates)

    def _sample(self, batch_size: int, length: int, split: str) -> dict[str, np.ndarray]:
        return self.store.sample(batch_size, length, rng=self.rng, split=split,
                                 held_out_fraction=self.trust.held_out_fraction,
                                 held_out_block_steps=self.trust.held_out_block_steps)

    # -- the loop ---------------------------------------------------------------------

    def iterate(self) -> list[PolicyBundle]:
        """Train up to `updates_per_iteration` updates (beyond the train ratio only while offline
        training is allowed); return bundles to publish (0 or 1)."""
        if not self.ready():
            return []
        n = min(self.updates_owed(), self.settings.updates_per_iteration)
        offline = 0 if n else self.offline.allowed(self.settings, self.settings.updates_per_iteration)
        cfg = self.agent.config
        for _ in range(n or offline):
            try:
                batch = self._sample(cfg.batch_size, cfg.seq_len, "train")
            except NotEnoughDataError:
                return []  # enough steps, but no session holds a whole training sequence yet
            metrics = self.agent.train_step(batch)
            if offline:
                self.offline.spent(1)
                self.state.offline_updates += 1
            step = self.agent.updates
            for key, value in metrics.items():
                self.writer.add_scalar(f"train/{key}", value, step)
            self.writer.add_scalar("replay/steps", self.replay_steps, step)
            if step % self.settings.checkpoint_every_updates == 0:
                self.checkpoint()
        bundles = []
        if self.agent.updates - self.state.last_export_update >= self.settings.export_every_updates:
            bundle = self._candidate()
            if bundle is not None:
                bundles.append(bundle)
        return bundles

    def checkpoint(self) -> None:
        """Save the agent with the learner state, then the readable summary derived from them."""
        self.agent.save_checkpoint(self.checkpoint_path, extra={"learner": self.state.model_dump(),
                                                                "promoted_models": self.promoted.snapshots})
        summary = {"note": f"summary of {self.checkpoint_path.name} (which is what a restart reads)",
                   "updates": self.agent.updates, "actor_warmup_updates": self.agent.config.actor_warmup_updates,
                   **self.state.model_dump(mode="json")}
        atomic_write(self.summary_path, json.dumps(summary, indent=2).encode())

    def check_trust(self) -> TrustReport:
        """Judge the current model and policy on held-out blocks (docs/model_trust.md)."""
        length = check_length(self.trust, self.agent.config)
        stats = self.store.split_stats(length, self.trust.held_out_fraction, self.trust.held_out_block_steps)
        for part, counts in stats.items():
            self.writer.add_scalar(f"{part}/blocks", counts.blocks, self.agent.updates)
            self.writer.add_scalar(f"{part}/steps", counts.steps, self.agent.updates)
        blocks = stats["held_out"].blocks
        if blocks < self.trust.min_held_out_blocks or not stats["train"].windows:
            return too_little_data(blocks, self.trust, self.agent.horizon)
        # Fixed windows, the newest (what the candidate's predecessor did), and fixed draws: the same data
        # give the same decision; the running model is measured on the same held-out windows.
        held_out, train = (self.store.windows(length, stride=self.trust.window_stride, limit=self.trust.check_sequences,
                                              split=part, held_out_fraction=self.trust.held_out_fraction,
                                              held_out_block_steps=self.trust.held_out_block_steps)
                           for part in ("held_out", "train"))
        measured = measure(self.agent, held_out, train, self.trust, blocks, self.agent.horizon,
                           running=self.promoted.running(self.agent, self.state.rejected))
        report = decide(measured, self.trust, self.agent.config.horizon)
        # Reported, not gated: does the critic know the reward's scale yet (docs/model_trust.md)?
        for part, windows in (("held_out", held_out), ("train", train)):
            for key, value in value_against_real_return(self.agent, windows).items():
                report.metrics[f"value_{key}" + ("" if part == "held_out" else "_train")] = value
        return report

    def _candidate(self) -> PolicyBundle | None:
        """Check model trust on held-out blocks; export, sign and record a promotion, or hold back."""
        step = self.agent.updates
        self.state.last_export_update = step
        report = self.check_trust()
        report.metrics.update(over_optimism(self.state.predicted_reward,
                                            real_reward_by_version(self.store)))
        version = self.state.policy_version + 1
        record = PromotionRecord(version=version, update=step, time=time.time(), promoted=report.passed,
                                 reasons=report.reasons, summary=report.summary, metrics=report.metrics,
                                 thresholds=report.thresholds, curves=report.curves)
        self.state.record(record)
        log_decision(self.writer, record)
        if report.next_horizon != self.agent.horizon:
            self.log(f"imagination horizon {self.agent.horizon} -> {report.next_horizon} (from the model's skill)")
        self.state.horizon = self.agent.horizon = report.next_horizon
        if not report.passed:
            self.log(f"v{version} held back at update {step}: {report.summary}")
            self.checkpoint()
            return None
        onnx_bytes = export_agent(self.agent)
        bundle = build_bundle(onnx_bytes, self.spec, version=version, training_step=step,
                              preset=self.agent.config.name, private_key=self.private_key,
                              evaluation=report.evaluation())
        save_bundle_file(bundle, self.bundle_path(version))
        # What the model promises for this policy, to hold against what the robot then collects.
        self.state.predict(version, report.metrics["imagined_reward_per_step"])
        self.promoted.add(version, self.agent, self.state.rejected)
        # Persist the version before publishing: a restarted learner never reuses a number.
        self.state.policy_version = version
        self.checkpoint()
        self.log(f"v{version} promoted at update {step}: {report.summary} ({len(onnx_bytes) / 1024:.0f} KiB ONNX)")
        return bundle

    def bundle_path(self, version: int) -> Path:
        return self.run_dir / "bundles" / f"policy_v{version:04d}.bundle"

    def record_policy_event(self, robot_id: str, version: int, event: str, reason: str, values: dict) -> None:
        """Record the robot's verdict about a version; a rejected version's bundle is renamed
        ``*.rejected`` so that no restart of this learner offers it again."""
        if robot_id != self.robot.robot_id:
            self.log(f"ignored a policy event from robot {robot_id!r} (this learner trains {self.robot.robot_id!r})")
            return
        numbers = {k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        record = PolicyEventRecord(version=version, event=event, reason=reason, values=numbers, time=time.time(),
                                   update=self.agent.updates)
        newly_rejected = self.state.record_event(record)
        log_policy_event(self.writer, record)
        self.log(f"robot: v{version} {event}: {reason}")
        if newly_rejected:
            path = self.bundle_path(version)
            if path.is_file():
                path.rename(path.with_name(path.name + REJECTED_SUFFIX))
            self.log(f"v{version} was rejected by the robot: it is never offered again")
        self.checkpoint()

    def latest_bundle(self) -> PolicyBundle | None:
        """The newest promoted bundle on disk that the robot has not rejected (re-published after a
        learner restart)."""
        from dreamer_core.deploy import load_bundle_file

        for path in sorted((self.run_dir / "bundles").glob("policy_v*.bundle"), reverse=True):
            bundle = load_bundle_file(path)
            if bundle.version not in self.state.rejected:
                return bundle
        return None

    def decision_status(self) -> dict[str, object]:
        """What the learner's diagnostics show about its decisions (docs/nodes.md#learner_node)."""
        last = self.state.promotions[-1] if self.state.promotions else None
        verdict = "" if last is None else "promoted" if last.promoted else "held back"
        return {
            "last_decision": "none" if last is None else f"v{last.version} {verdict}",
            "last_decision_reason": "" if last is None else last.summary,
            "promoted": self.state.promoted,
            "held_back": self.state.held_back,
            "horizon": self.agent.horizon,
        }

    def close(self) -> None:
        self.writer.close()
        if self.store is not None:
            self.store.close()


def check_length(trust, config) -> int:
    """Length of the check windows: K steps of context before the anchors and K after, at most
    the training sequence length."""
    return min(config.seq_len, 2 * trust.open_loop_steps + 1)


def trust_problems(trust, config) -> list[str]:
    """Ways a trust section cannot judge models of this preset."""
    problems = []
    if trust.open_loop_steps + 2 > config.seq_len:
        problems.append(f"trust.open_loop_steps ({trust.open_loop_steps}) must be at most seq_len - 2 "
                        f"({config.seq_len - 2}): each check window needs an anchor with that many real steps after it")
    if trust.horizon == "fixed" and config.horizon > trust.open_loop_steps:
        problems.append(f"the preset's horizon ({config.horizon}) exceeds trust.open_loop_steps "
                        f"({trust.open_loop_steps}): skill is judged at the imagination horizon, so measure that far")
    if trust.held_out_block_steps is not None and trust.held_out_block_steps < check_length(trust, config):
        problems.append(f"trust.held_out_block_steps ({trust.held_out_block_steps}) must be at least the check window "
                        f"({check_length(trust, config)} steps): a held-out block must hold whole check windows")
    return problems
