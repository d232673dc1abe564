"""The offboard learner loop: replay → world model + imagination → gated, signed policy bundles.

`LearnerRunner.iterate()` does a bounded amount of work and returns the bundles to
publish, so the learner node (or any script) drives it from its own loop and
stays responsive. Everything it needs to resume (agent checkpoint, policy version,
counters) is written atomically under `run_dir`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from dreamer_core.algorithms.agent import Agent
from dreamer_core.algorithms.promotion import evaluate_trust
from dreamer_core.config import load_agent_config
from dreamer_core.deploy import PolicyBundle, build_bundle, load_private_key, save_bundle_file
from dreamer_core.deploy.export import export_agent
from dreamer_core.io import atomic_write
from dreamer_core.storage import NotEnoughDataError, ReplayStore

# Real steps of a policy version before its over-optimism is reported (noise below that).
MIN_STEPS_FOR_OVER_OPTIMISM = 200


def real_reward_by_version(store: ReplayStore) -> dict[int, tuple[float, int]]:
    """Mean real reward per step (episode starts excluded) and step count, per policy version."""
    sums: dict[int, list[float]] = {}
    for _, cols in store.iter_steps():
        keep = ~cols["is_first"]
        versions, rewards = cols["policy_version"][keep], cols["reward"][keep]
        for version in np.unique(versions):
            acc = sums.setdefault(int(version), [0.0, 0])
            chosen = rewards[versions == version]
            acc[0] += float(chosen.sum())
            acc[1] += len(chosen)
    return {v: (total / count, count) for v, (total, count) in sums.items()}


class LearnerSettings(BaseModel):
    """Learner-node settings (ROS parameters of learner_node; see docs/nodes.md)."""

    model_config = ConfigDict(extra="forbid")

    replay_dir: Path
    run_dir: Path
    preset: str = "xs"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    train_ratio: float = Field(512.0, gt=0)
    min_steps: int = Field(1000, ge=1)
    export_every_updates: int = Field(100, ge=1)
    checkpoint_every_updates: int = Field(50, ge=1)
    updates_per_iteration: int = Field(5, ge=1)
    torch_threads: int = Field(1, ge=1)
    # Niceness increment of the learner process: on a shared machine the robot-side processes come first.
    nice: int = Field(10, ge=0, le=19)
    private_key: Path | None = None


class LearnerRunner:
    """Trains one agent from one replay store and emits promoted policy bundles."""

    def __init__(self, robot_config, settings: LearnerSettings, log=print):
        self.robot = robot_config
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
        self.state_path = self.run_dir / "learner_state.json"
        self.private_key = load_private_key(settings.private_key) if settings.private_key else None
        if self.private_key is None:
            log("WARNING: no private_key: bundles are UNSIGNED and only a robot in development mode takes them")
        self.spec = robot_config.policy_spec()
        self.store: ReplayStore | None = None
        self.rng = np.random.default_rng(settings.seed)
        self.state = {"policy_version": 0, "updates": 0, "last_export_update": 0, "promotions": []}
        if self.checkpoint_path.is_file() and self.state_path.is_file():
            self.agent = Agent.load_checkpoint(self.checkpoint_path, device=self.device)
            self.state = json.loads(self.state_path.read_text())
            log(f"resumed from {self.checkpoint_path}: {self.state['updates']} updates, "
                f"policy version {self.state['policy_version']}")
        else:
            config = load_agent_config(settings.preset)
            self.agent = Agent(robot_config.obs_dim, robot_config.act_dim, config, device=self.device,
                               seed=settings.seed)
        if robot_config.trust.open_loop_steps >= self.agent.config.seq_len:
            raise ValueError(
                f"trust.open_loop_steps ({robot_config.trust.open_loop_steps}) must be below the preset's seq_len "
                f"({self.agent.config.seq_len}): the open-loop check needs that many real steps after each anchor"
            )
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    # -- data ------------------------------------------------------------------------

    def _open_store(self) -> bool:
        if self.store is None:
            if not (Path(self.settings.replay_dir) / "store.json").is_file():
                return False
            self.store = ReplayStore(self.settings.replay_dir, readonly=True)
        self.store.refresh()
        return True

    @property
    def policy_steps(self) -> int:
        return 0 if self.store is None else self.store.num_steps

    def ready(self) -> bool:
        """True once the store holds `min_steps` real steps (the robot runs its initial policy meanwhile)."""
        return self._open_store() and self.store.num_steps >= self.settings.min_steps

    def updates_owed(self) -> int:
        """Updates the train ratio allows for the data collected so far."""
        cfg = self.agent.config
        allowed = self.settings.train_ratio * self.policy_steps / (cfg.batch_size * cfg.seq_len)
        return max(0, int(allowed) - self.state["updates"])

    def _batch(self) -> dict[str, np.ndarray]:
        cfg = self.agent.config
        return self.store.sample(cfg.batch_size, cfg.seq_len, rng=self.rng)

    # -- the loop ---------------------------------------------------------------------

    def iterate(self) -> list[PolicyBundle]:
        """Train up to `updates_per_iteration` updates; return bundles to publish (0 or 1)."""
        if not self.ready():
            return []
        n = min(self.updates_owed(), self.settings.updates_per_iteration)
        for _ in range(n):
            try:
                batch = self._batch()
            except NotEnoughDataError:
                return []  # enough steps, but no session holds a whole sequence yet
            metrics = self.agent.train_step(batch)
            self.state["updates"] += 1
            step = self.state["updates"]
            for key, value in metrics.items():
                self.writer.add_scalar(f"train/{key}", value, step)
            self.writer.add_scalar("replay/steps", self.policy_steps, step)
            if step % self.settings.checkpoint_every_updates == 0:
                self.checkpoint()
        bundles = []
        if self.state["updates"] - self.state["last_export_update"] >= self.settings.export_every_updates:
            bundle = self._candidate()
            if bundle is not None:
                bundles.append(bundle)
        return bundles

    def checkpoint(self) -> None:
        self.agent.save_checkpoint(self.checkpoint_path)
        atomic_write(self.state_path, json.dumps(self.state, indent=2).encode())

    def _candidate(self) -> PolicyBundle | None:
        """Check model trust on held-out real sequences; export, sign and record a promotion."""
        step = self.state["updates"]
        self.state["last_export_update"] = step
        # Recency-biased: the newest real data is the least trained on, the closest to held out.
        cfg = self.agent.config
        check = self.store.sample(cfg.batch_size, cfg.seq_len, rng=self.rng, recency=1.0)
        report = evaluate_trust(self.agent, check, self.robot.trust)
        report.metrics.update(self._over_optimism())
        for key, value in report.metrics.items():
            self.writer.add_scalar(f"trust/{key}", value, step)
        version = self.state["policy_version"] + 1
        decision = {"version": version, "update": step, "time": time.time(), "promoted": report.passed,
                    "reasons": report.reasons, "metrics": report.metrics}
        self.state["promotions"].append(decision)
        if not report.passed:
            self.log(f"candidate at update {step} NOT promoted: {'; '.join(report.reasons)}")
            self.checkpoint()
            return None
        onnx_bytes = export_agent(self.agent)
        bundle = build_bundle(onnx_bytes, self.spec, version=version, training_step=step,
                              preset=self.agent.config.name, private_key=self.private_key,
                              evaluation=report.metrics)
        save_bundle_file(bundle, self.run_dir / "bundles" / f"policy_v{version:04d}.bundle")
        # What the model promises for this policy, to hold against what the robot then collects.
        predicted = self.agent.imagine_returns(check, self.agent.config.horizon)["reward"]
        self.state.setdefault("predicted_reward", {})[str(version)] = predicted
        # Persist the version before publishing: a restarted learner never reuses a number.
        self.state["policy_version"] = version
        self.checkpoint()
        self.log(f"policy v{version} promoted at update {step} ({len(onnx_bytes) / 1024:.0f} KiB ONNX)")
        return bundle

    def _over_optimism(self) -> dict[str, float]:
        """Imagined minus real mean reward per step, for the newest deployed version with enough real data.

        Reported (TensorBoard, promotion log), not gated: it can only be measured after a
        policy has run on the robot, so gating on it would block every later candidate.
        """
        real = real_reward_by_version(self.store)
        for version in sorted((int(v) for v in self.state.get("predicted_reward", {})), reverse=True):
            mean, steps = real.get(version, (0.0, 0))
            if steps >= MIN_STEPS_FOR_OVER_OPTIMISM:
                predicted = self.state["predicted_reward"][str(version)]
                return {"over_optimism": predicted - mean, "over_optimism_version": float(version),
                        "real_reward_per_step": mean, "imagined_reward_per_step": predicted}
        return {}

    def latest_bundle(self) -> PolicyBundle | None:
        """The newest promoted bundle on disk (re-published after a learner restart)."""
        from dreamer_core.deploy import load_bundle_file

        files = sorted((self.run_dir / "bundles").glob("policy_v*.bundle"))
        return load_bundle_file(files[-1]) if files else None

    def close(self) -> None:
        self.writer.close()
        if self.store is not None:
            self.store.close()
