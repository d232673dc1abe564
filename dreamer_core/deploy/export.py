"""Export one control tick of a Dreamer agent to ONNX (learner side; the only deploy module using torch)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import onnx
import torch

from dreamer_core.deploy.validation import MAX_OPSET
from dreamer_core.models.policy_tick import PolicyTick
from dreamer_core.spec import TICK_INPUTS, TICK_OUTPUTS

# LayerNormalization is an ONNX op from opset 17 on.
DEFAULT_OPSET = 17


def export_policy_tick(
    tick: PolicyTick,
    path_or_buffer: str | Path | BinaryIO | None = None,
    opset: int = DEFAULT_OPSET,
) -> bytes:
    """Export one control tick to ONNX with the contract's fixed batch-1 shapes (``tick.dims``).

    Returns the ONNX bytes and also writes them to ``path_or_buffer`` when given. Weights are
    embedded (no external data).
    """
    if opset > MAX_OPSET:
        raise ValueError(f"opset {opset} is newer than robots accept (MAX_OPSET {MAX_OPSET})")
    buffer = io.BytesIO()
    was_training = tick.training
    tick.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The dynamo exporter needs onnxscript, which the learner image does not carry; the
            # TorchScript exporter handles this fixed-shape, control-flow-free graph fine.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(
                tick,
                tick.example_inputs(),
                buffer,
                dynamo=False,
                input_names=list(TICK_INPUTS),
                output_names=list(TICK_OUTPUTS),
                opset_version=opset,
                do_constant_folding=True,
            )
    finally:
        tick.train(was_training)
    onnx_bytes = _restore_contract_inputs(buffer.getvalue(), tick.dims.input_shapes())
    if isinstance(path_or_buffer, str | Path):
        Path(path_or_buffer).write_bytes(onnx_bytes)
    elif path_or_buffer is not None:
        path_or_buffer.write(onnx_bytes)
    return onnx_bytes


def export_agent(
    agent, path_or_buffer: str | Path | BinaryIO | None = None, opset: int = DEFAULT_OPSET
) -> bytes:
    """Export ``agent.policy_tick()``."""
    return export_policy_tick(agent.policy_tick(), path_or_buffer, opset=opset)


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
