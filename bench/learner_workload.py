"""The learner-speed workload shared by side_by_side.py, profile_update.py and memory.py (not a test).

B = 16 sequences × T = 64 steps, imagination horizon 15, vector observations of 24, 6 continuous
actions, float32, torch eager on the CPU, random batches. :func:`our_learner` is the only place that
touches this project's learner, through its public API, so retargeting it after a refactor of
``dreamer_core`` is a change to that one function.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path

import torch
from train_throughput import synthetic_batch

from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config

BATCH, LENGTH, HORIZON, OBS_DIM, ACT_DIM = 16, 64, 15, 24, 6


def our_learner(preset: str, seed: int = 0) -> tuple[Agent, Callable[[], object]]:
    """Our agent for ``preset`` in float32 eager mode and a callable that runs one update
    (``Agent.train_step``) on a fixed random B×T batch."""
    config = load_agent_config(preset, {"batch_size": BATCH, "seq_len": LENGTH, "horizon": HORIZON,
                                        "precision": "float32", "compile": False})
    agent = Agent(OBS_DIM, ACT_DIM, config, device="cpu", seed=seed)
    batch = synthetic_batch(BATCH, LENGTH, OBS_DIM, ACT_DIM, seed)
    return agent, lambda: agent.train_step(batch)


def machine() -> str:
    """CPU model and core count, for the header of a measurement."""
    models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
              if line.startswith("model name")]
    return f"{models[0] if models else platform.machine()}, {os.cpu_count()} cores"


def load_average() -> str:
    """The 1/5/15-minute load averages, to state how busy the machine was during a measurement."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def set_threads(threads: int) -> None:
    """Intra- and inter-op thread counts for the whole process (set once, before any torch work)."""
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
