"""Export parity: the ONNX policy tick run by onnxruntime matches the torch tick it came from."""

from __future__ import annotations

import io

import deploy_helpers as helpers
import numpy as np
import pytest
import torch

from dreamer_core.deploy.export import export_policy_tick
from dreamer_core.deploy.runtime import open_session, sample_noise
from dreamer_core.deploy.validation import MAX_OPSET, check_graph, read_onnx
from dreamer_core.spec import TICK_INPUTS, TICK_OUTPUTS, PolicyDims

TICKS = 200
EPISODE_STARTS = (0, 77, 150)  # mid-sequence resets exercise the is_first path too


@pytest.mark.parametrize(("preset", "seed"), [("xs", 0), ("xs", 1), ("s", 2)])
def test_onnx_matches_torch_over_200_ticks_with_state_fed_back(preset, seed):
    agent = helpers.agent(preset, seed)
    module = agent.policy_tick()
    session = open_session(helpers.exported(preset, seed))
    rng = np.random.default_rng(seed)
    observations = rng.normal(0.0, 2.0, size=(TICKS, helpers.OBS_DIM)).astype(np.float32)
    start = {k: v.numpy() for k, v in agent.initial_state(1).items()}
    ort_state, torch_state = dict(start), {k: torch.from_numpy(v.copy()) for k, v in start.items()}
    gumbel = np.zeros_like(start["z"])
    eps = np.zeros_like(start["prev_action"])
    worst = dict.fromkeys(TICK_OUTPUTS, 0.0)
    actions = []
    for t in range(TICKS):
        sample_noise(rng, gumbel, eps, explore=True)
        feeds = {"obs": observations[t : t + 1], **ort_state,
                 "is_first": np.array([float(t in EPISODE_STARTS)], np.float32), "gumbel": gumbel, "eps": eps}
        ort_out = session.run(list(TICK_OUTPUTS), feeds)
        torch_feeds = {**{k: torch.from_numpy(v) for k, v in feeds.items()}, **torch_state}
        with torch.no_grad():
            torch_out = module(*(torch_feeds[name] for name in TICK_INPUTS))
        for name, a, b in zip(TICK_OUTPUTS, ort_out, torch_out, strict=True):
            worst[name] = max(worst[name], float(np.abs(a - b.numpy()).max()))
        # Each side carries its own state, as the robot and the learner would.
        ort_state = {"h": ort_out[2], "z": ort_out[3], "prev_action": ort_out[0]}
        torch_state = {"h": torch_out[2], "z": torch_out[3], "prev_action": torch_out[0]}
        actions.append(ort_out[0][0])
    assert max(worst.values()) <= 1e-4, worst
    assert np.ptp(np.array(actions), axis=0).min() > 0.0, "actions never changed: the comparison saw no dynamics"


@pytest.mark.parametrize("preset", ["xs", "s"])
def test_exported_graph_declares_the_contract_and_only_allowed_ops(preset):
    agent = helpers.agent(preset)
    state = agent.initial_state(1)
    dims = PolicyDims(obs=helpers.OBS_DIM, act=agent.act_dim, deter=state["h"].shape[1], stoch=state["z"].shape[1])
    assert agent.policy_tick().dims == dims
    graph = read_onnx(helpers.exported(preset))
    assert list(graph.inputs) == list(TICK_INPUTS)
    assert list(graph.outputs) == list(TICK_OUTPUTS)
    check_graph(graph, dims)  # raises on an op outside ALLOWED_OPS or an off-contract shape


def test_export_writes_path_and_buffer_and_refuses_unsupported_opset(tmp_path):
    agent = helpers.agent("xs")
    tick = agent.policy_tick()
    buffer = io.BytesIO()
    data = export_policy_tick(tick, buffer)
    assert buffer.getvalue() == data
    export_policy_tick(tick, tmp_path / "policy.onnx")
    assert (tmp_path / "policy.onnx").read_bytes() == data
    for training in (True, False):  # export evaluates in eval mode, then restores the caller's mode
        tick.train(training)
        export_policy_tick(tick)
        assert tick.training is training
    with pytest.raises(ValueError, match="MAX_OPSET"):
        export_policy_tick(tick, opset=MAX_OPSET + 1)
