"""Static checks of an ONNX policy graph before anything executes it.

The robot image carries onnxruntime but not the ``onnx`` package, so the few
ModelProto fields the checks need are read straight from the protobuf wire
format (a handful of field numbers from onnx.proto, which is a stable format).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from dreamer_core.deploy.errors import BundleRejected
from dreamer_core.spec import PolicyDims

# Newest default-domain opset whose operator semantics this runtime was validated with.
MAX_OPSET = 20

# Operators the real Dreamer policy steps export to (presets xs and s, torch's TorchScript
# exporter at opset 17), plus the few siblings the exporter picks for equivalent torch code
# (Split/Squeeze/Neg/Exp/Max/Min/Pow/Sqrt/Reduce*/Transpose/Flatten/Greater/Less/Not).
# Nothing with control flow, randomness (noise is an input), custom domains, or I/O.
ALLOWED_OPS = frozenset({
    "Abs", "Add", "ArgMax", "Cast", "Clip", "Concat", "Constant", "ConstantOfShape", "Div", "Equal",
    "Exp", "Expand", "Flatten", "Gather", "Gemm", "Greater", "Identity", "LayerNormalization", "Less",
    "Log", "MatMul", "Max", "Min", "Mod", "Mul", "Neg", "Not", "OneHot", "Pow", "Reciprocal", "ReduceMax",
    "ReduceMean", "ReduceSum", "Reshape", "Shape", "Sigmoid", "Sign", "Slice", "Softmax", "Split", "Sqrt",
    "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where",
})
_DEFAULT_DOMAINS = ("", "ai.onnx")
_FLOAT = 1  # TensorProto.DataType.FLOAT
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


class _Malformed(Exception):
    pass


@dataclass
class GraphSummary:
    """The parts of a ModelProto the policy checks look at."""

    opsets: dict[str, int] = field(default_factory=dict)
    # (domain, op_type, node name) of every top-level node.
    nodes: list[tuple[str, str, str]] = field(default_factory=list)
    # name -> (elem_type, shape); a symbolic dimension is None.
    inputs: dict[str, tuple[int, tuple[int | None, ...]]] = field(default_factory=dict)
    outputs: dict[str, tuple[int, tuple[int | None, ...]]] = field(default_factory=dict)
    initializers: set[str] = field(default_factory=set)
    external_tensors: list[str] = field(default_factory=list)
    subgraph_nodes: list[str] = field(default_factory=list)
    has_functions: bool = False

    @property
    def opset(self) -> int:
        """The default-domain opset the model declares."""
        versions = [v for d, v in self.opsets.items() if d in _DEFAULT_DOMAINS]
        return max(versions) if versions else 0


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: int | memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of each field in a message; length-delimited values as views."""
    if not isinstance(buf, memoryview):
        raise _Malformed("a nested message is encoded as a number")
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 2, 5):
            if wire == 2:
                size, pos = _varint(buf, pos)
            else:
                size = 8 if wire == 1 else 4
            if pos + size > end:
                raise _Malformed("field runs past the end of its message")
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise _Malformed(f"unsupported protobuf wire type {wire}")
        yield number, value


def _text(value: int | memoryview) -> str:
    if not isinstance(value, memoryview):
        raise _Malformed("a string is encoded as a number")
    return bytes(value).decode("utf-8", errors="replace")


def _int(value: int | memoryview) -> int:
    if not isinstance(value, int):
        raise _Malformed("an integer is encoded as bytes")
    return value - (1 << 64) if value >= 1 << 63 else value  # int64 two's complement


def _tensor_is_external(tensor: memoryview) -> bool:
    # TensorProto: external_data = 13, data_location = 14.
    return any(n == 13 or (n == 14 and v == _EXTERNAL) for n, v in _fields(tensor))


def _value_info(buf: memoryview) -> tuple[str, tuple[int, tuple[int | None, ...]]]:
    # ValueInfoProto{1 name, 2 TypeProto{1 Tensor{1 elem_type, 2 TensorShapeProto{1 Dimension{1 value}}}}}
    name, elem_type, dims = "", 0, []
    for n, v in _fields(buf):
        if n == 1:
            name = _text(v)
        elif n == 2:
            for tn, tv in _fields(v):
                if tn != 1:
                    continue
                for en, ev in _fields(tv):
                    if en == 1:
                        elem_type = _int(ev)
                    elif en == 2:
                        for _, dim in _fields(ev):
                            value = None
                            for dn, dv in _fields(dim):
                                if dn == 1:
                                    value = _int(dv)
                            dims.append(value)
    return name, (elem_type, tuple(dims))


def _node(buf: memoryview, summary: GraphSummary) -> None:
    # NodeProto{3 name, 4 op_type, 7 domain, 5 AttributeProto{5 t, 6 g, 10 tensors, 11 graphs}}
    name = op_type = domain = ""
    for n, v in _fields(buf):
        if n == 3:
            name = _text(v)
        elif n == 4:
            op_type = _text(v)
        elif n == 7:
            domain = _text(v)
        elif n == 5:
            for an, av in _fields(v):
                if an in (6, 11):
                    summary.subgraph_nodes.append(name)
                elif an in (5, 10) and _tensor_is_external(av):
                    summary.external_tensors.append(f"attribute of node {name}")
    summary.nodes.append((domain, op_type, name))


def _graph(buf: memoryview, summary: GraphSummary) -> None:
    # GraphProto{1 node, 5 initializer, 11 input, 12 output, 15 sparse_initializer}
    for n, v in _fields(buf):
        if n == 1:
            _node(v, summary)
        elif n == 5:
            tensor_name = next((_text(tv) for tn, tv in _fields(v) if tn == 8), "")  # TensorProto.name = 8
            summary.initializers.add(tensor_name)
            if _tensor_is_external(v):
                summary.external_tensors.append(tensor_name)
        elif n == 15 and any(_tensor_is_external(tv) for _, tv in _fields(v)):
            summary.external_tensors.append("sparse initializer")
        elif n in (11, 12):
            name, info = _value_info(v)
            (summary.inputs if n == 11 else summary.outputs)[name] = info


def read_onnx(onnx_bytes: bytes) -> GraphSummary:
    """Read opsets, nodes and graph inputs/outputs; raises ``BundleRejected("malformed_onnx")``."""
    summary = GraphSummary()
    has_graph = False
    try:
        # ModelProto{7 graph, 8 OperatorSetIdProto{1 domain, 2 version}, 25 functions}
        for n, v in _fields(memoryview(onnx_bytes)):
            if n == 7:
                _graph(v, summary)
                has_graph = True
            elif n == 8:
                domain, version = "", 0
                for on, ov in _fields(v):
                    if on == 1:
                        domain = _text(ov)
                    elif on == 2:
                        version = _int(ov)
                summary.opsets[domain] = version
            elif n == 25:
                summary.has_functions = True
    except _Malformed as exc:
        raise BundleRejected(
            "malformed_onnx", f"ONNX bytes do not parse ({exc}); re-export the policy"
        ) from exc
    if not has_graph or not summary.opset:
        raise BundleRejected(
            "malformed_onnx", "ONNX model has no graph or no default-domain opset; re-export"
        )
    return summary


def _check_io(kind: str, actual: dict, expected: dict[str, tuple[int, ...]]) -> None:
    reason = "input_shape" if kind == "inputs" else "output_shape"
    if list(actual) != list(expected):
        raise BundleRejected(
            reason,
            f"graph {kind} are {list(actual)}, the policy-step contract is {list(expected)}; "
            "export with dreamer_core.deploy.export",
        )
    for name, (elem_type, shape) in actual.items():
        if elem_type != _FLOAT or shape != expected[name]:
            raise BundleRejected(
                reason,
                f"graph {kind[:-1]} {name!r} is {shape} (elem_type {elem_type}), expected float32 "
                f"{expected[name]}; the policy was exported for other dimensions than the manifest and "
                "robot spec say",
            )


def check_graph(summary: GraphSummary, dims: PolicyDims) -> None:
    """Refuse external data, newer opsets, operators outside :data:`ALLOWED_OPS` and I/O off-contract."""
    if summary.external_tensors:
        raise BundleRejected(
            "external_data",
            f"tensors stored outside the bundle: {summary.external_tensors[:5]}; "
            "export with weights embedded in the ONNX",
        )
    if summary.opset > MAX_OPSET:
        raise BundleRejected(
            "opset_unsupported",
            f"model declares opset {summary.opset}, this runtime supports up to "
            f"{MAX_OPSET}; export with opset <= {MAX_OPSET} or update the robot's dreamer_core",
        )
    bad = sorted(
        {
            f"{domain + '::' if domain else ''}{op}"
            for domain, op, _ in summary.nodes
            if domain not in _DEFAULT_DOMAINS or op not in ALLOWED_OPS
        }
    )
    if summary.subgraph_nodes or summary.has_functions:
        bad.append("subgraphs/model-local functions")
    if bad:
        raise BundleRejected(
            "op_not_allowed",
            f"graph uses operators outside the allowed set: {', '.join(bad)}; "
            "a policy step needs none of these (see ALLOWED_OPS in dreamer_core/deploy/validation.py)",
        )
    graph_inputs = {k: v for k, v in summary.inputs.items() if k not in summary.initializers}
    _check_io("inputs", graph_inputs, dims.input_shapes())
    _check_io("outputs", summary.outputs, dims.output_shapes())
