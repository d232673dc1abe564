"""Compute precision: the hardware-dependent choice, and bf16 autocast agreeing with float32.

The parity check runs bf16 autocast on any CPU: on one without bf16 units (the AVX2 CI machine)
it is slow but computes what bf16 units would, so the xs-sized batch here keeps it to seconds.
"""

import logging

import pytest
import torch
from learner_helpers import ACT_DIM, OBS_DIM, random_batch

from dreamer_core import precision
from dreamer_core.algorithms.agent import Agent
from dreamer_core.config import load_agent_config

CPU = torch.device("cpu")
# bf16 keeps 8 mantissa bits (relative rounding 2^-9 ≈ 0.2 %) and the 16-step recurrence adds to it;
# 3 % relative (plus 1e-3 absolute for terms near zero) bounds what was measured on this batch
# (largest deviation 0.6 %) while a wrong cast (e.g. a loss in bf16, or fp16) would exceed it.
PARITY_REL, PARITY_ABS = 0.03, 1e-3


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16\n\nflags\t: other\n")
    assert precision.cpu_flags(info) == {"fpu", "avx2", "avx512_bf16", "amx_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("supported", [True, False])
def test_auto_takes_bf16_only_with_bf16_units(monkeypatch, caplog, supported):
    monkeypatch.setattr(precision, "bf16_support", lambda device: (supported, "evidence"))
    with caplog.at_level(logging.INFO, logger="dreamer_core.precision"):
        chosen = precision.choose_precision("auto", CPU)
    assert chosen.dtype == (torch.bfloat16 if supported else torch.float32)
    assert f"precision {chosen.name} on cpu" in caplog.text and "evidence" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_explicit_bf16_without_units_warns_and_float32_never_checks(monkeypatch, caplog):
    monkeypatch.setattr(precision, "bf16_support", lambda device: (False, "CPU has no AVX-512 BF16"))
    with caplog.at_level(logging.INFO, logger="dreamer_core.precision"):
        assert precision.choose_precision("bf16", CPU).dtype == torch.bfloat16
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "bf16 was requested but CPU has no AVX-512 BF16" in warnings[0]
    monkeypatch.setattr(precision, "bf16_support", lambda device: pytest.fail("float32 needs no detection"))
    assert precision.choose_precision("float32", CPU).dtype == torch.float32


def test_this_machine_is_detected_consistently():
    supported, evidence = precision.bf16_support(CPU)
    flags = precision.cpu_flags()
    if flags and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert supported == bool(flags & set(precision.CPU_BF16_FLAGS)), evidence
    assert precision.choose_precision("auto", CPU).dtype == (torch.bfloat16 if supported else torch.float32)


def _trained_agent() -> Agent:
    """An xs agent after a few float32 updates (fresh reward and critic heads output exactly 0,
    which would make their losses agree trivially)."""
    torch.set_num_threads(1)
    config = load_agent_config("xs", {"precision": "float32", "batch_size": 4, "seq_len": 16, "horizon": 5})
    agent = Agent(OBS_DIM, ACT_DIM, config, seed=3)
    for i in range(4):
        agent.train_step(random_batch(seed=i, batch=4, length=16))
    return agent


def _losses(agent: Agent, start: dict | None = None) -> tuple[dict, dict]:
    data = agent.to_tensors(random_batch(seed=9, batch=4, length=16))
    wm_loss, metrics, post = agent.world_model_loss(data)
    if start is None:
        start = {"h": post["h"].flatten(0, 1).detach(), "z": post["z"].flatten(0, 1).detach(),
                 "cont": 1.0 - data["is_terminal"].flatten(0, 1)}
    actor, critic, behaviour = agent.behaviour_losses(start)
    return {**metrics, **behaviour, "actor": actor, "critic": critic, "world_model": wm_loss}, start


def test_bf16_losses_agree_with_float32_on_the_same_batch():
    full_agent, half_agent = _trained_agent(), _trained_agent()  # identical parameters and RNG states
    half_agent.precision = precision.choose_precision("bf16", CPU)
    full, start = _losses(full_agent)
    half, _ = _losses(half_agent, start)  # the behaviour losses from the same start states
    for name, value in full.items():
        assert half[name].dtype == torch.float32, f"{name} left in {half[name].dtype}"
        assert half[name].item() == pytest.approx(value.item(), rel=PARITY_REL, abs=PARITY_ABS), name
    # The comparison is not vacuous: autocast did run the matmuls in bf16.
    assert any(half[name].item() != value.item() for name, value in full.items())
