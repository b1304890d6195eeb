"""What onnxruntime's graph optimizer makes of one of our graphs: the layout of each conv and
the reorders between layouts. The only part of the latency model that runs onnxruntime.

Our kernel detection reads the optimised graph rather than timing test cases as nn-Meter
does: the layout transformer's decision is visible, so it need not be inferred from timings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Layouts:
    """What onnxruntime's graph optimizer made of one graph: the layout of each conv
    (layer name -> ``nchwc`` | ``nchw``) and the tensors it reorders between layouts (the
    layer whose output is reordered, or ``input`` for the graph's input)."""

    convs: Mapping[str, str]
    reorders: tuple[str, ...]


def detect_layouts(model: Any) -> Layouts:
    """Optimise ``model`` (an ``onnx.ModelProto``) as the CPU provider would at level
    ``all`` on this machine and read which kernels it chose: our kernel detection, from the
    optimised graph rather than nn-Meter's timed test cases (the transformer's decision is
    visible, so it need not be inferred from timings)."""
    import os
    import tempfile

    import onnx
    import onnxruntime as ort

    from mobilenet.layers import assign_layer

    names = {node.name: node.name for node in model.graph.node if node.op_type == "Conv"}
    names |= {"input": "input", "pool": "pool"}
    with tempfile.TemporaryDirectory(prefix="mnbench-detect-") as tmp:
        source = os.path.join(tmp, "model.onnx")
        target = os.path.join(tmp, "optimized.onnx")
        onnx.save(model, source)
        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.intra_op_num_threads = 1
        options.optimized_model_filepath = target
        ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(target)
    convs: dict[str, str] = {}
    reorders: list[str] = []
    for node in optimized.graph.node:
        if node.op_type in ("ReorderInput", "ReorderOutput"):
            tensor = node.input[0] if node.op_type == "ReorderInput" else node.output[0]
            layer = assign_layer(tensor, names)
            reorders.append(layer or "input")
            continue
        layer = assign_layer(node.name, names)
        if layer is None or layer in ("input", "pool"):
            continue
        if node.op_type in ("Conv", "FusedConv"):
            convs[layer] = "nchwc" if node.domain.endswith("nchwc") else "nchw"
    return Layouts(convs, tuple(reorders))
