"""The cost model on graphs that are not ours: BN nodes, grouped convs, MatMul heads,
symbolic batch, and the ``mnbench cost`` verb."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.cli import main
from mobilenet.cost import analyze_model


def foreign_model() -> onnx.ModelProto:
    """A PyTorch-export-like graph: symbolic batch, Conv without bias + BN, a grouped conv,
    a depthwise conv, and a MatMul + Add head."""
    rng = np.random.default_rng(1)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    inits = [
        init("w1", 16, 3, 7, 7),
        init("bn.s", 16),
        init("bn.b", 16),
        init("bn.m", 16),
        init("bn.v", 16),
        init("w2", 32, 4, 3, 3),  # group 4
        init("w3", 32, 1, 5, 5),  # depthwise, group 32
        init("w4", 24, 32, 1, 1),
        init("fcw", 24, 10),
        init("fcb", 10),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["x", "w1"], ["c1"], name="stem", strides=[2, 2], pads=[3, 3, 3, 3]
        ),
        helper.make_node(
            "BatchNormalization", ["c1", "bn.s", "bn.b", "bn.m", "bn.v"], ["b1"], name="bn"
        ),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="grouped", group=4, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c2", "w3"], ["c3"], name="dw", group=32, pads=[2, 2, 2, 2]),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("Conv", ["r3", "w4"], ["c4"], name="pw"),
        helper.make_node("GlobalAveragePool", ["c4"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fcw"], ["mm"], name="head"),
        helper.make_node("Add", ["mm", "fcb"], ["y"], name="bias"),
    ]
    graph = helper.make_graph(
        nodes,
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)


def test_foreign_graph_costs() -> None:
    cost = analyze_model(foreign_model())
    by_name = {n.name: n for n in cost.nodes}
    assert by_name["stem"].kind == "stem" and by_name["stem"].macs == 16 * 16 * 16 * 3 * 49
    assert by_name["grouped"].kind == "standard" and by_name["grouped"].macs == 16 * 16 * 32 * 4 * 9
    assert by_name["dw"].kind == "depthwise" and by_name["dw"].macs == 16 * 16 * 32 * 25
    assert by_name["pw"].kind == "pointwise" and by_name["pw"].macs == 16 * 16 * 24 * 32
    assert by_name["head"].kind == "fc" and by_name["head"].macs == 24 * 10
    assert by_name["bn"].params == 64 and by_name["bn"].macs == 0
    assert by_name["bias"].params == 10
    assert cost.total_params == 16 * 147 + 64 + 32 * 36 + 32 * 25 + 24 * 32 + 240 + 10
    assert any("'batch'" in note for note in cost.notes)
    (block,) = cost.blocks
    assert (block.depthwise, block.pointwise, block.kernel) == ("dw", "pw", 5)
    assert block.predicted_ratio == pytest.approx(1 / 24 + 1 / 25)
    # activation bytes of the stem: input 3x32x32 floats in, 16x16x16 floats out
    assert by_name["stem"].input_bytes == 3 * 32 * 32 * 4
    assert by_name["stem"].output_bytes == 16 * 16 * 16 * 4
    assert by_name["stem"].weight_bytes == 16 * 147 * 4


def test_symbolic_batch_override() -> None:
    cost = analyze_model(foreign_model(), {"x": [8, 3, 32, 32]})
    assert cost.total_macs == 8 * analyze_model(foreign_model()).total_macs


def test_peak_activation_memory_sequential() -> None:
    cost = analyze_model(foreign_model())
    # The largest moment: c1 (16x16x16) alive while b1 is made, or r1 while c2 is made, etc.
    sizes = {
        "x": 3 * 32 * 32,
        "c1": 16 * 16 * 16,
        "b1": 16 * 16 * 16,
        "r1": 16 * 16 * 16,
        "c2": 32 * 16 * 16,
        "c3": 32 * 16 * 16,
        "r3": 32 * 16 * 16,
        "c4": 24 * 16 * 16,
    }
    candidates = [
        sizes["x"] + sizes["c1"],
        sizes["c1"] + sizes["b1"],
        sizes["b1"] + sizes["r1"],
        sizes["r1"] + sizes["c2"],
        sizes["c2"] + sizes["c3"],
        sizes["c3"] + sizes["r3"],
        sizes["r3"] + sizes["c4"],
    ]
    assert cost.peak_activation_bytes == 4 * max(candidates)


def test_cost_command_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "foreign.onnx"
    onnx.save(foreign_model(), str(path))
    assert main(["cost", str(path)]) == 0
    table = capsys.readouterr().out
    assert "MACs (M)" in table and "depthwise" in table and "conventions:" in table
    assert main(["cost", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"]["macs"] == analyze_model(foreign_model()).total_macs
    assert doc["separable_blocks"][0]["D_K"] == 5
    assert main(["cost", str(path), "--format", "csv", "--shape", "x=2x3x32x32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("name,op_type,kind,macs")
    assert len(lines) == 1 + len(foreign_model().graph.node)


@pytest.mark.parametrize("content", [b"", b"not onnx at all", b"\x08\x07\x12\x03abc"])
def test_cost_rejects_bad_files(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    assert main(["cost", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(path) in err and len(err.splitlines()) == 1


def test_cost_rejects_missing_file_and_bad_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cost", str(tmp_path / "nope.onnx")]) == 2
    path = tmp_path / "f.onnx"
    onnx.save(foreign_model(), str(path))
    assert main(["cost", str(path), "--shape", "x=abc"]) == 2
    assert main(["cost", str(path), "--shape", "x=1x3"]) == 2
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 3 and all(e.startswith("mnbench: error:") for e in errs)
