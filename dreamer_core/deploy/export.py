"""Export one control tick of a Dreamer agent to ONNX (learner side; the only deploy module using torch)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import onnx
import torch

from dreamer_core.deploy.manifest import INPUT_NAMES, OUTPUT_NAMES, PolicyDims
from dreamer_core.deploy.validation import MAX_OPSET

# LayerNormalization is an ONNX op from opset 17 on.
DEFAULT_OPSET = 17


def export_policy_step(
    module: torch.nn.Module,
    obs_dim: int,
    act_dim: int,
    deter_dim: int,
    stoch_dim: int,
    path_or_buffer: str | Path | BinaryIO | None = None,
    opset: int = DEFAULT_OPSET,
) -> bytes:
    """Export ``module`` (one tick: ``forward(obs, h, z, prev_action, is_first, gumbel, eps) ->
    (action, action_mean, h_next, z_next)``) to ONNX with fixed batch-1 shapes.

    ``stoch_dim`` is the flat width S*C of z. Returns the ONNX bytes and also writes them to
    ``path_or_buffer`` when given. Weights are embedded (no external data).
    """
    if opset > MAX_OPSET:
        raise ValueError(f"opset {opset} is newer than robots accept (MAX_OPSET {MAX_OPSET})")
    device = next(module.parameters()).device
    widths = (obs_dim, deter_dim, stoch_dim, act_dim, None, stoch_dim, act_dim)
    example = tuple(torch.zeros((1, n) if n else (1,), device=device) for n in widths)
    buffer = io.BytesIO()
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The dynamo exporter needs onnxscript, which the learner image does not carry; the
            # TorchScript exporter handles this fixed-shape, control-flow-free graph fine.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(
                module,
                example,
                buffer,
                dynamo=False,
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                opset_version=opset,
                do_constant_folding=True,
            )
    finally:
        module.train(was_training)
    shapes = PolicyDims(obs=obs_dim, act=act_dim, deter=deter_dim, stoch=stoch_dim).input_shapes()
    onnx_bytes = _restore_contract_inputs(buffer.getvalue(), shapes)
    if isinstance(path_or_buffer, str | Path):
        Path(path_or_buffer).write_bytes(onnx_bytes)
    elif path_or_buffer is not None:
        path_or_buffer.write(onnx_bytes)
    return onnx_bytes


def export_agent(
    agent, path_or_buffer: str | Path | BinaryIO | None = None, opset: int = DEFAULT_OPSET
) -> bytes:
    """Export ``agent.policy_step_module()`` with the dimensions of ``agent.initial_state(1)``."""
    state = agent.initial_state(1)
    return export_policy_step(
        agent.policy_step_module(),
        agent.obs_dim,
        agent.act_dim,
        state["h"].shape[-1],
        state["z"].shape[-1],
        path_or_buffer,
        opset=opset,
    )


def _restore_contract_inputs(onnx_bytes: bytes, shapes: dict[str, tuple[int, ...]]) -> bytes:
    """Declare every contract input in contract order.

    The exporter drops inputs a tick does not read (a DreamerV3 tick needs only h from the
    carried state), but the robot feeds all of them, so they are put back as unused inputs.
    """
    model = onnx.load_from_string(onnx_bytes)
    present = {value.name: value for value in model.graph.input}
    unknown = set(present) - set(shapes)
    if unknown:
        raise ValueError(f"exported graph has inputs {sorted(unknown)} outside the policy-step contract")
    ordered = [
        present.get(name) or onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(shape))
        for name, shape in shapes.items()
    ]
    del model.graph.input[:]
    model.graph.input.extend(ordered)
    return model.SerializeToString()
