"""Learner hyper-parameters as data: pydantic-validated YAML presets.

Defaults are the published DreamerV3 values (arXiv 2301.04104v1; the table in
docs/architecture.md#the-learner-recipe); a preset YAML under ``dreamer_core/presets/``
lists only what it changes. Errors name the key path and the file.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

# The preset the learner, the launch files and the stack launcher start from when none is named.
DEFAULT_PRESET = "xs"

# Weight of every loss term in the learner's objectives (DreamerV3: the world-model terms at 1
# except the two KL terms, the actor and critic losses at 1; the trust ensemble's heads, which
# see stop-gradient features only, at 1). A term without a scale is an error.
DEFAULT_LOSS_SCALES = {
    "decoder": 1.0, "reward": 1.0, "continue": 1.0, "kl_dyn": 0.5, "kl_rep": 0.1, "ensemble": 1.0,
    "actor": 1.0, "critic": 1.0,
}


class AgentConfig(BaseModel):
    """All learner hyper-parameters. Unknown keys are rejected so that typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    # World-model sizes.
    deter: PositiveInt = 512
    units: PositiveInt = 512
    layers: PositiveInt = 2
    stoch: PositiveInt = 32
    classes: PositiveInt = 32
    unimix: float = Field(0.01, ge=0.0, lt=1.0)
    bins: PositiveInt = 255
    bin_range: PositiveFloat = 20.0
    # Objectives: free bits of the KL terms and the weight of every loss term (missing keys keep
    # their default, unknown keys are refused).
    free_nats: float = Field(1.0, ge=0.0)
    loss_scales: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_LOSS_SCALES))
    # Model trust (docs/model_trust.md): one-step heads whose disagreement marks imagined states far
    # from the data, and how much of that disagreement imagination subtracts from the reward.
    ensemble_members: int = Field(5, ge=2)
    disagreement_penalty: float = Field(0.0, ge=0.0)
    # Behaviour.
    horizon: PositiveInt = 15
    gamma: float = Field(1.0 - 1.0 / 333.0, gt=0.0, le=1.0)
    lam: float = Field(0.95, ge=0.0, le=1.0)
    actor_entropy: float = Field(3e-4, ge=0.0)
    actor_min_std: PositiveFloat = 0.1
    actor_max_std: PositiveFloat = 1.0
    # Initial actor (null/false: DreamerV3's random output layer, std about 0.89 at min/max 0.1/1). A
    # robot's fresh candidate should act like the initial policy: mean action 0 (the default pose)
    # and a small std, so that imagination starts near the data the robot collected.
    actor_init_zero_mean: bool = False
    actor_init_std: PositiveFloat | None = None
    # Updates in which the actor stays as it is while the world model and the critic learn: a
    # candidate exported before the critic knows the reward's scale would follow noise.
    actor_warmup_updates: int = Field(0, ge=0)
    slow_critic_fraction: float = Field(0.02, gt=0.0, le=1.0)
    slow_critic_reg: float = Field(1.0, ge=0.0)
    return_norm_rate: float = Field(0.01, gt=0.0, le=1.0)
    return_norm_low: float = Field(5.0, ge=0.0, le=100.0)
    return_norm_high: float = Field(95.0, ge=0.0, le=100.0)
    # Optimisers (Adam).
    model_lr: PositiveFloat = 1e-4
    model_eps: PositiveFloat = 1e-8
    model_grad_clip: PositiveFloat = 1000.0
    actor_lr: PositiveFloat = 3e-5
    actor_eps: PositiveFloat = 1e-5
    actor_grad_clip: PositiveFloat = 100.0
    critic_lr: PositiveFloat = 3e-5
    critic_eps: PositiveFloat = 1e-5
    critic_grad_clip: PositiveFloat = 100.0
    # Data.
    batch_size: PositiveInt = 16
    seq_len: PositiveInt = 64
    # Replayed steps per collected step; the one train ratio (see dreamer_core.runners.train_ratio).
    train_ratio: PositiveFloat = 512.0
    # Execution. precision: "auto" = bf16 autocast only where the device has bf16 matrix units
    # (dreamer_core.precision), float32 otherwise; "bf16" forces it (warns where it is slow).
    precision: Literal["auto", "float32", "bf16"] = "auto"
    compile: bool = False

    @field_validator("loss_scales", mode="before")
    @classmethod
    def _complete_loss_scales(cls, value):
        if not isinstance(value, dict):
            return value  # pydantic reports the type error
        unknown = sorted(set(value) - set(DEFAULT_LOSS_SCALES))
        if unknown:
            raise ValueError(f"unknown loss terms {unknown}; the terms are {list(DEFAULT_LOSS_SCALES)}")
        bad = {k: v for k, v in value.items()
               if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0}
        if bad:
            raise ValueError(f"scales must be numbers >= 0, got {bad}")
        return {**DEFAULT_LOSS_SCALES, **value}

    @model_validator(mode="after")
    def _check_ranges(self) -> AgentConfig:
        if self.actor_min_std >= self.actor_max_std:
            raise ValueError("actor_min_std must be below actor_max_std")
        if self.actor_init_std is not None and not self.actor_min_std < self.actor_init_std < self.actor_max_std:
            raise ValueError(f"actor_init_std ({self.actor_init_std}) must lie strictly between actor_min_std "
                             f"({self.actor_min_std}) and actor_max_std ({self.actor_max_std})")
        if self.return_norm_low >= self.return_norm_high:
            raise ValueError("return_norm_low must be below return_norm_high")
        if self.bins < 2:
            raise ValueError("bins must be at least 2")
        return self


def preset_names() -> list[str]:
    """Names of the packaged presets (``xs``, ``s``, ...)."""
    folder = resources.files("dreamer_core") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    merged.update(extra)
    return merged


def load_agent_config(preset: str | Path = DEFAULT_PRESET, overrides: dict | None = None) -> AgentConfig:
    """Load a packaged preset by name (``"xs"``, ``"s"``, ``"m"``, ``"l"``) or a YAML file by path,
    apply ``overrides`` (a flat dict of config keys) and validate.

    Raises ValueError naming the file and the offending key path.
    """
    text_source = str(preset)
    if isinstance(preset, Path) or text_source.endswith((".yaml", ".yml")) or "/" in text_source:
        path = Path(preset)
        if not path.is_file():
            raise ValueError(f"agent config file {path} does not exist")
        source, text = str(path), path.read_text()
    else:
        names = preset_names()
        if text_source not in names:
            raise ValueError(f"unknown agent preset {text_source!r}; packaged presets are {names}, "
                             "or pass the path of a YAML file")
        source = f"preset {text_source!r} (dreamer_core/presets/{text_source}.yaml)"
        text = (resources.files("dreamer_core") / "presets" / f"{text_source}.yaml").read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of config keys, got {type(data).__name__}")
    data.setdefault("name", Path(text_source).stem)
    if overrides:
        data = _merge(data, overrides)
        source += " with overrides " + ", ".join(sorted(overrides))
    try:
        return AgentConfig(**data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ValueError(f"{source}: invalid agent config: {problems}") from exc
