"""The cost model: MACs, parameters, bytes and peak activation memory of any ONNX graph.

Conventions (stated in ``mnbench cost --help`` and docs/cost-model.md):
- one multiply-add is one MAC; FLOPs = 2 x MACs. Only Conv (grouped and depthwise too),
  Gemm and MatMul carry MACs; BatchNormalization, activations, pooling, softmax and
  element-wise ops count zero (as TF-Slim and the paper count them).
- parameters are the elements of the initializers a node consumes (each initializer counted
  once, at its first consumer); Constant nodes are not parameters.
- activation bytes are the non-initializer inputs and the outputs of a node; weight bytes
  are the initializers' bytes at their stored width.
- arithmetic intensity = FLOPs / (weight + input + output bytes), in FLOP per byte.
- quantised (QDQ) graphs: a DequantizeLinear whose input is an initializer is part of the
  weights of the layer that consumes it — its int8 (or int32 bias) elements are that layer's
  parameters, counted once, at their stored width; its scales and zero points add bytes but
  are not parameters; its float output is neither an activation nor a MAC. QuantizeLinear and
  DequantizeLinear count zero MACs, so an int8 model has the MACs of its fp32 parent. Layer
  kinds look through QuantizeLinear, DequantizeLinear and Cast (a stem fed by ``Cast(input)``
  or ``DequantizeLinear(QuantizeLinear(input))`` is still the stem).
- peak activation memory: tensors live from the node that makes them to their last
  consumer (graph inputs from the start, graph outputs to the end), nodes executed
  sequentially in graph order; the peak of the live total.
- symbolic dimensions (e.g. a batch ``N``) are set to 1 unless a shape is given.

For each depthwise conv followed by a pointwise conv (through activations or batch norm), the
block's predicted cost ratio against a standard conv is 1/N + 1/D_K² (Howard et al. 2017,
eq. 5) and the exact MAC ratio is (dw + pw MACs) / (D_K² · M · N · D_F'²).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import onnx
from onnx import helper

from mobilenet.errors import UserError

Kind = Literal["stem", "depthwise", "pointwise", "standard", "fc", "other"]
KINDS: tuple[Kind, ...] = ("stem", "depthwise", "pointwise", "standard", "fc", "other")
MAC_OPS = frozenset({"Conv", "Gemm", "MatMul"})
PASS_THROUGH_OPS = frozenset(
    {
        "Relu",
        "Clip",
        "BatchNormalization",
        "Identity",
        "LeakyRelu",
        "HardSwish",
        "Sigmoid",
        "Mul",
        "Add",
        "PRelu",
        "Elu",
        "Selu",
        "Tanh",
    }
)
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
TRANSPARENT_OPS = QDQ_OPS | {"Cast"}
"""Ops that change a tensor's type but not what it is: layer kinds look through them."""
QUANT_PARAM_INPUTS = (1, 2)
"""Scale and zero point of QuantizeLinear/DequantizeLinear: bytes, not parameters."""
CONVENTIONS = (
    "MACs: one multiply-add = one MAC (FLOPs = 2 x MACs), counted for Conv, Gemm and MatMul "
    "only (QuantizeLinear/DequantizeLinear count 0); params: elements of the initializers a "
    "node consumes, a quantised weight's elements counted once and its scales and zero points "
    "not; bytes at stored width (int8 1, fp16 2, scales and zero points included); "
    "symbolic dimensions set to 1."
)


@dataclass(frozen=True)
class NodeCost:
    name: str
    op_type: str
    kind: Kind
    macs: int
    params: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int
    output_shape: tuple[int, ...] | None

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def intensity_flop_per_byte(self) -> float:
        moved = self.weight_bytes + self.input_bytes + self.output_bytes
        return self.flops / moved if moved else 0.0


@dataclass(frozen=True)
class SeparableBlock:
    """A depthwise conv and the pointwise conv that follows it, against a standard conv."""

    depthwise: str
    pointwise: str
    in_channels: int  # M
    out_channels: int  # N
    kernel: int  # D_K
    stride: int
    in_size: int  # D_F of the input
    out_size: int
    depthwise_macs: int
    pointwise_macs: int
    standard_macs: int

    @property
    def predicted_ratio(self) -> float:
        """1/N + 1/D_K² (Howard et al. 2017, eq. 5)."""
        return 1.0 / self.out_channels + 1.0 / self.kernel**2

    @property
    def mac_ratio(self) -> float:
        return (self.depthwise_macs + self.pointwise_macs) / self.standard_macs


@dataclass(frozen=True)
class ModelCost:
    nodes: tuple[NodeCost, ...]
    blocks: tuple[SeparableBlock, ...]
    peak_activation_bytes: int
    notes: tuple[str, ...] = field(default=())

    @property
    def total_macs(self) -> int:
        return sum(n.macs for n in self.nodes)

    @property
    def total_params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def total_weight_bytes(self) -> int:
        return sum(n.weight_bytes for n in self.nodes)

    def macs_by_kind(self) -> dict[Kind, int]:
        shares: dict[Kind, int] = dict.fromkeys(KINDS, 0)
        for node in self.nodes:
            shares[node.kind] += node.macs
        return shares

    def params_by_kind(self) -> dict[Kind, int]:
        shares: dict[Kind, int] = dict.fromkeys(KINDS, 0)
        for node in self.nodes:
            shares[node.kind] += node.params
        return shares


def _dtype_bytes(elem_type: int) -> int:
    return int(helper.tensor_dtype_to_np_dtype(elem_type).itemsize) if elem_type else 4


def _concrete(
    model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]]
) -> tuple[onnx.ModelProto, list[str]]:
    """A copy with graph-input dims fixed: symbolic ones to 1 unless ``shapes`` says otherwise."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    notes: list[str] = []
    initializers = {t.name for t in fixed.graph.initializer}
    inputs = [v.name for v in fixed.graph.input if v.name not in initializers]
    unknown = sorted(set(shapes) - set(inputs))
    if unknown:
        raise UserError(
            f"--shape {unknown[0]}: the model has no input of that name; its inputs are "
            f"{', '.join(inputs) or 'none'}"
        )
    for value in fixed.graph.input:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        given = shapes.get(value.name)
        if given is not None:
            if len(given) != len(dims):
                raise UserError(
                    f"--shape {value.name} has {len(given)} dimensions but the model's input "
                    f"has {len(dims)}; give all of them, e.g. {value.name}=1x3x224x224"
                )
            for dim, size in zip(dims, given, strict=True):
                dim.Clear()
                dim.dim_value = int(size)
            continue
        for dim in dims:
            if dim.HasField("dim_value") and dim.dim_value < 0:
                raise UserError(
                    f"input {value.name} declares the negative dimension {dim.dim_value}; "
                    f"fix the model or give its shape with --shape {value.name}=DIMS"
                )
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                label = dim.dim_param or "?"
                dim.Clear()
                dim.dim_value = 1
                notes.append(f"symbolic dimension {label!r} of {value.name} set to 1")
    return fixed, notes


def _shape_table(model: onnx.ModelProto) -> dict[str, tuple[tuple[int, ...] | None, int]]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # a foreign graph shape inference cannot handle: use what is declared
        inferred = model
    table: dict[str, tuple[tuple[int, ...] | None, int]] = {}
    graph = inferred.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = value.type.tensor_type
        shape: tuple[int, ...] | None = None
        if tensor_type.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
            shape = None if any(d < 0 for d in dims) else tuple(dims)
        table[value.name] = (shape, tensor_type.elem_type)
    for init in graph.initializer:
        table[init.name] = (tuple(init.dims), init.data_type)
    return table


def _bytes(entry: tuple[tuple[int, ...] | None, int] | None) -> int:
    if entry is None or entry[0] is None:
        return 0
    return math.prod(entry[0]) * _dtype_bytes(entry[1])


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _macs(node: onnx.NodeProto, shapes: Mapping[str, tuple[tuple[int, ...] | None, int]]) -> int:
    def shape(name: str) -> tuple[int, ...] | None:
        entry = shapes.get(name)
        return entry[0] if entry else None

    if node.op_type == "Conv":
        weight, out = shape(node.input[1]), shape(node.output[0])
        if weight is None or out is None:
            return 0
        # out: N, C_out, *spatial; weight: C_out, C_in/group, *kernel
        return math.prod(out) * math.prod(weight[1:])
    if node.op_type == "Gemm":
        a, b = shape(node.input[0]), shape(node.input[1])
        if a is None or b is None or len(a) != 2 or len(b) != 2:
            return 0  # Gemm takes matrices; anything else the checker let through costs 0
        m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
        n = b[0] if _attr(node, "transB", 0) else b[1]
        return m * k * n
    if node.op_type == "MatMul":
        a, out = shape(node.input[0]), shape(node.output[0])
        if not a or out is None:  # unknown, or a scalar (MatMul needs at least 1-D)
            return 0
        return math.prod(out) * a[-1]
    return 0


def _kind(
    node: onnx.NodeProto,
    shapes: Mapping[str, tuple[tuple[int, ...] | None, int]],
    graph_inputs: set[str],
    producers: Mapping[str, onnx.NodeProto] | None = None,
) -> Kind:
    if node.op_type in ("Gemm", "MatMul"):
        return "fc"
    if node.op_type != "Conv":
        return "other"
    weight = shapes.get(node.input[1], (None, 0))[0]
    x = shapes.get(node.input[0], (None, 0))[0]
    group = int(_attr(node, "group", 1))  # type: ignore[call-overload]
    in_channels = x[1] if x is not None and len(x) > 1 else None
    if group > 1 and in_channels is not None and group == in_channels:
        return "depthwise"
    if _source(node.input[0], producers or {}) in graph_inputs:
        return "stem"
    if weight is not None and group == 1 and all(k == 1 for k in weight[2:]):
        return "pointwise"
    return "standard"


def _source(name: str, producers: Mapping[str, onnx.NodeProto]) -> str:
    """The tensor ``name`` was made from, through Quantize/DequantizeLinear and Cast."""
    for _ in range(16):
        node = producers.get(name)
        if node is None or node.op_type not in TRANSPARENT_OPS or not node.input:
            return name
        name = node.input[0]
    return name


def _weight_dequantizers(
    graph: onnx.GraphProto, initializers: set[str]
) -> dict[str, onnx.NodeProto]:
    """Output name -> DequantizeLinear of an initializer (a quantised weight or bias)."""
    return {
        node.output[0]: node
        for node in graph.node
        if node.op_type == "DequantizeLinear" and node.output and node.input[0] in initializers
    }


def analyze_model(
    model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]] | None = None
) -> ModelCost:
    """Per-node costs, separable blocks and peak activation memory of an ONNX model."""
    fixed, notes = _concrete(model, shapes or {})
    table = _shape_table(fixed)
    graph = fixed.graph
    initializers = {t.name for t in graph.initializer}
    constants = {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    graph_inputs = {v.name for v in graph.input if v.name not in initializers}
    producers = {out: node for node in graph.node for out in node.output if out}
    dequantized = _weight_dequantizers(graph, initializers)
    absorbed = {id(node) for node in dequantized.values()}

    nodes: list[NodeCost] = []
    counted: set[str] = set()

    def weight(name: str, position: int, op_type: str) -> tuple[int, int]:
        """(params, bytes) of an initializer the first time a layer consumes it."""
        if name in counted:
            return 0, 0
        counted.add(name)
        quant_param = op_type in QDQ_OPS and position in QUANT_PARAM_INPUTS
        params = 0 if quant_param else math.prod(table[name][0] or ())
        return params, _bytes(table[name])

    for node in graph.node:
        params = weight_bytes = input_bytes = 0
        for position, name in enumerate(node.input):
            if not name or id(node) in absorbed:
                continue
            if name in initializers:
                p, b = weight(name, position, node.op_type)
                params, weight_bytes = params + p, weight_bytes + b
            elif name in dequantized:  # a quantised weight: the layer's own parameters
                dq = dequantized[name]
                for dq_position, dq_input in enumerate(dq.input):
                    if dq_input in initializers:
                        p, b = weight(dq_input, dq_position, dq.op_type)
                        params, weight_bytes = params + p, weight_bytes + b
            elif name not in constants:
                input_bytes += _bytes(table.get(name))
        out_entry = table.get(node.output[0]) if node.output else None
        nodes.append(
            NodeCost(
                name=node.name or (node.output[0] if node.output else node.op_type),
                op_type=node.op_type,
                kind=_kind(node, table, graph_inputs, producers),
                macs=_macs(node, table) if node.op_type in MAC_OPS else 0,
                params=params,
                weight_bytes=weight_bytes,
                input_bytes=input_bytes,
                output_bytes=0
                if id(node) in absorbed
                else sum(_bytes(table.get(o)) for o in node.output if o),
                output_shape=out_entry[0] if out_entry else None,
            )
        )
    if any(n.op_type in MAC_OPS and n.macs == 0 for n in nodes):
        notes.append("some MAC-carrying nodes have unknown shapes and count 0 MACs")
    return ModelCost(
        nodes=tuple(nodes),
        blocks=tuple(_separable_blocks(graph, nodes, table)),
        peak_activation_bytes=_peak_activation_bytes(
            graph, table, initializers | constants | set(dequantized)
        ),
        notes=tuple(notes),
    )


def _separable_blocks(
    graph: onnx.GraphProto,
    costs: Sequence[NodeCost],
    table: Mapping[str, tuple[tuple[int, ...] | None, int]],
) -> list[SeparableBlock]:
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    blocks: list[SeparableBlock] = []
    for index, (node, cost) in enumerate(zip(graph.node, costs, strict=True)):
        if cost.kind != "depthwise":
            continue
        current = index
        follower: int | None = None
        for _ in range(8):  # walk through activations, batch norm, Q/DQ to the next conv
            nexts = consumers.get(graph.node[current].output[0], [])
            if len(nexts) != 1:
                break
            current = nexts[0]
            op = graph.node[current].op_type
            if op == "Conv":
                follower = current
                break
            if op not in PASS_THROUGH_OPS and op not in TRANSPARENT_OPS:
                break
        if follower is None or costs[follower].kind != "pointwise":
            continue
        x = table[node.input[0]][0]
        weight = table[node.input[1]][0]
        out = table[graph.node[follower].output[0]][0]
        if x is None or weight is None or out is None:
            continue
        strides = _attr(node, "strides", [1, 1])
        stride = int(strides[0]) if isinstance(strides, list) and strides else 1
        kernel = weight[2]
        m, n = x[1], out[1]
        spatial = math.prod(out[2:])
        blocks.append(
            SeparableBlock(
                depthwise=cost.name,
                pointwise=costs[follower].name,
                in_channels=m,
                out_channels=n,
                kernel=kernel,
                stride=stride,
                in_size=x[2],
                out_size=out[2],
                depthwise_macs=cost.macs,
                pointwise_macs=costs[follower].macs,
                standard_macs=out[0] * spatial * m * n * math.prod(weight[2:]),
            )
        )
    return blocks


def _peak_activation_bytes(
    graph: onnx.GraphProto,
    table: Mapping[str, tuple[tuple[int, ...] | None, int]],
    not_activations: set[str],
) -> int:
    last_use: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in not_activations:
                last_use[name] = index
    keep = {v.name for v in graph.output}
    live: dict[str, int] = {
        v.name: _bytes(table.get(v.name)) for v in graph.input if v.name not in not_activations
    }
    peak = sum(live.values())
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant":
            continue
        for name in node.output:
            if name and name not in not_activations:
                live[name] = _bytes(table.get(name))
        peak = max(peak, sum(live.values()))
        for name in list(live):
            if name not in keep and last_use.get(name, -1) <= index:
                del live[name]
    return peak


def load_model_file(path: Path) -> onnx.ModelProto:
    """Load and check an ONNX file, turning every failure into one line."""
    if path.is_dir():
        raise UserError(f"{path} is a directory; give the path of one .onnx file in it")
    if path.exists() and not path.is_file():
        raise UserError(f"{path} is not a regular file; give the path of an .onnx file")
    if not path.is_file():
        raise UserError(f"{path} does not exist; give the path of an .onnx file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise UserError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}); give an .onnx file"
        ) from exc
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise UserError(f"{path} fails the ONNX checker: {first[:200]}") from exc
    return model
