"""Builders shared by the deploy tests: an A1-like spec, real agents and their exported policy steps."""

from __future__ import annotations

import dataclasses
import functools

import onnx
import torch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config
from dreamer_core.deploy.export import export_agent
from dreamer_core.spec import PolicySpec

torch.set_num_threads(1)

A1_JOINTS = tuple(f"{leg}_{part}_joint" for leg in ("FR", "FL", "RR", "RL") for part in ("hip", "upper", "lower"))
A1_OBSERVATION = (
    ("joint_pos", 12), ("joint_vel", 12), ("base_ang_vel", 3), ("projected_gravity", 3), ("foot_contacts", 4),
    ("prev_action", 12),
)


def a1_spec(**changes) -> PolicySpec:
    """The spec of a simulated A1 (46 observations, 12 joints), with optional field changes."""
    return dataclasses.replace(PolicySpec("a1_test", A1_OBSERVATION, A1_JOINTS), **changes)


OBS_DIM = a1_spec().obs_dim


# A preset's fresh actor may start at a constant action (xs: mean 0, std 0.2 for every state): the
# deploy tests need actions that depend on the observation and the carried state, as a trained
# policy's do, so their agents start with DreamerV3's random actor head.
RANDOM_ACTOR = {"actor_init_zero_mean": False, "actor_init_std": None}


def new_agent(preset: str = "xs", seed: int = 0, obs_dim: int = OBS_DIM) -> Agent:
    """A randomly initialised agent with a random actor head (not cached: safe to modify)."""
    return Agent(obs_dim, len(A1_JOINTS), load_agent_config(preset, RANDOM_ACTOR), seed=seed)


@functools.cache
def agent(preset: str = "xs", seed: int = 0, obs_dim: int = OBS_DIM) -> Agent:
    """A cached random agent; tests must not modify it."""
    return new_agent(preset, seed, obs_dim)


@functools.cache
def exported(preset: str = "xs", seed: int = 0, obs_dim: int = OBS_DIM) -> bytes:
    """The ONNX policy step of :func:`agent`."""
    return export_agent(agent(preset, seed, obs_dim))


def edit_onnx(onnx_bytes: bytes, edit) -> bytes:
    """Apply ``edit(model)`` to a parsed ModelProto and serialise it again."""
    model = onnx.load_from_string(onnx_bytes)
    edit(model)
    return model.SerializeToString()
