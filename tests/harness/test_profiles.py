"""Per-node profiles mapped back to layers: a real whole-model run with ``--profile`` and a
foreign model, through the real runner, onnxruntime and the results store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from devices.agent import cli as agent_cli
from harness.cli import main
from mobilenet.cost import analyze_model
from mobilenet.layers import UNASSIGNED, assign_layer, layer_card, profile_layers
from reports.build import build_report
from results.store import Store

FAST = ["--min-time", "0.05", "--max-time", "0.2", "--quiet"]


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("profiled")
    rc = main(
        [
            "run",
            "--alpha",
            "0.25",
            "--resolution",
            "96",
            "--threads",
            "1",
            "--trials",
            "2",
            "--profile",
            "--db",
            str(tmp / "db.sqlite"),
            "--models-dir",
            str(tmp / "models"),
            *FAST,
        ]
    )
    assert rc == 0
    return tmp


def test_every_conv_of_our_model_maps_to_a_layer(profiled: Path) -> None:
    with Store.open(profiled / "db.sqlite") as store:
        frame = store.profiles_frame([1])
        results = store.results_frame([1])
    assert list(frame.columns[:8]) == [
        "run_id",
        "device",
        "name",
        "layer",
        "kind",
        "time_ms",
        "macs",
        "flops_per_s",
    ]
    conv_rows = frame[frame["op_types"].str.contains("Conv")]
    assert not conv_rows.empty
    assert (conv_rows["layer"] != UNASSIGNED).all(), conv_rows[["layer", "nodes"]]
    by_kind = frame.groupby("kind")["layer"].nunique()
    assert by_kind["depthwise"] == 13 and by_kind["pointwise"] == 13
    assert by_kind["stem"] == 1 and by_kind["fc"] == 1
    # every MAC of the model is in some layer, once
    assert int(frame["macs"].sum()) == int(results["macs"].iloc[0])
    assert (frame["time_ms"] > 0).all() and (frame["trials"] == 2).all()
    dw = frame[frame["layer"] == "block1.depthwise"].iloc[0]
    assert dw["flops_per_s"] == pytest.approx(2 * dw["macs"] / (dw["time_ms"] / 1000))
    # ORT's own reorder nodes, if any, are reported rather than dropped
    nodes = {n for text in frame["nodes"] for n in text.split(",")}
    with Store.open(profiled / "db.sqlite") as store:
        docs = store.measurements_frame([1])
    assert len(docs) == 2
    with Store.open(profiled / "db.sqlite") as store:
        rows = store.measurement_rows([1])
    profiled_nodes = {n for row in rows for n in json.loads(row["document"])["profile"]}
    assert nodes == profiled_nodes


def test_report_time_share_from_profiles(profiled: Path) -> None:
    files = build_report(profiled / "db.sqlite", ["latest"], None, profiled / "report")
    share = pd.read_csv(files.out_dir / "time_share.csv")
    assert {"stem", "depthwise", "pointwise", "fc"} <= set(share["kind"])
    assert share["time_share"].sum() == pytest.approx(1.0)
    assert share["mac_share"].sum() == pytest.approx(1.0)
    # no layer probes in this run: their charts say what to run
    assert (
        "Roofline: achieved GFLOP/s vs arithmetic intensity per layer",
        "the selected runs hold no layer probes",
    ) in files.skipped


def foreign_model(path: Path) -> onnx.ModelProto:
    """Someone else's graph: its own node names, a Relu after each conv, a Transpose."""
    rng = np.random.default_rng(1)

    def weight(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="features/conv_a", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="act_a"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="features/conv_b"),
        helper.make_node("Relu", ["c2"], ["r2"], name="act_b"),
        helper.make_node("Transpose", ["r2"], ["y"], name="to_nhwc", perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 32, 32])],
        [weight("w1", (32, 16, 3, 3)), weight("w2", (32, 32, 1, 1))],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7, producer_name="other"
    )
    onnx.save(model, str(path))
    return model


def test_foreign_model_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "foreign.onnx"
    model = foreign_model(path)
    assert agent_cli.main([str(path), "--fixed", "5", "--profile", "--profile-runs", "5"]) == 0
    profile = json.loads(capsys.readouterr().out)["profile"]
    assert profile

    card = layer_card(analyze_model(model), model)
    assert card["nodes"]["act_a"] == "features/conv_a"  # the activation joins its conv
    assert card["layers"]["to_nhwc"]["kind"] == "other"
    rows = profile_layers(profile, card)
    for row in rows:
        if any(op == "Conv" for op in row["op_types"]):
            assert row["layer"] in ("features/conv_a", "features/conv_b")
    assert sum(r["time_us"] for r in rows) == pytest.approx(
        sum(e["median_us"] for e in profile.values())
    )
    assert assign_layer("ReorderOutput_token_3", card["nodes"]) is None
    assert assign_layer("features/conv_a_nchwc", card["nodes"]) == "features/conv_a"
    assert assign_layer("r2_nchwc", card["nodes"]) == "features/conv_b"  # named by tensor
    assert assign_layer("features/conv_ab", card["nodes"]) is None

    # through the store: `mnbench run --model` stores a layer card for someone else's file,
    # so its convs map to layers; what onnxruntime added is reported unassigned, not dropped
    db = tmp_path / "db.sqlite"
    rc = main(["run", "--model", str(path), "--profile", "--trials", "1", "--db", str(db), *FAST])
    assert rc == 0
    capsys.readouterr()
    with Store.open(db) as store:
        frame = store.profiles_frame([1])
        doc = json.loads(store.measurement_rows([1])[0]["document"])
    assert {"features/conv_a", "features/conv_b"} <= set(frame["layer"])
    assigned = frame[frame["layer"] != UNASSIGNED]
    assert set(assigned["kind"]) <= {"stem", "standard", "pointwise", "depthwise"}
    reported = [n for nodes in frame["nodes"] for n in str(nodes).split(",")]
    assert sorted(reported) == sorted(doc["profile"])
    assert frame["time_ms"].sum() == pytest.approx(
        sum(e["median_us"] for e in doc["profile"].values()) / 1000
    )
