"""Layer probes, the measured-ratio arithmetic, the limits microbenchmark and ``mnbench
layers`` end to end on this CPU with the real runner and onnxruntime."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import onnx
import pandas as pd
import pytest

from devices.agent.bundle import LIMITS as limits_entry
from devices.agent.bundle import zipapp_path
from harness.cli import main
from mobilenet.architecture import same_output
from mobilenet.cost import analyze_model
from mobilenet.generator import IR_VERSION, OPSET, check_model
from mobilenet.layers import (
    gflop_per_s,
    layer_table,
    measured_ratio,
    parts_ratio,
    predicted_ratio,
)
from mobilenet.probes import BLOCKS, block_probes, build_probe, generate_probe, parse_probe_name
from reports.build import build_report
from results.store import Store

LIMITS = zipapp_path(limits_entry)
FAST = ["--min-time", "0.05", "--max-time", "0.3", "--quiet"]


def formula_macs(role: str, m: int, n: int, d_f: int, stride: int, k: int) -> int:
    """Howard et al. 2017: standard D_K²·M·N·D_F², depthwise D_K²·M·D_F², pointwise
    M·N·D_F², with D_F the output size."""
    out = same_output(d_f, stride)
    standard = k * k * m * n * out * out
    depthwise = k * k * m * out * out
    pointwise = m * n * out * out
    return {
        "standard": standard,
        "depthwise": depthwise,
        "pointwise": pointwise,
        "separable": depthwise + pointwise,
    }[role]


@pytest.mark.parametrize(("alpha", "resolution"), [(1.0, 224), (0.75, 160), (0.25, 128)])
@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_probe_macs_follow_the_formulas(alpha: float, resolution: int, kernel: int) -> None:
    probes = block_probes(alpha, resolution, (kernel,))
    assert len(probes) == 4 * 13
    by_block: dict[int, dict[str, int]] = {}
    for probe in probes:
        expected = formula_macs(
            probe.role,
            probe.in_channels,
            probe.out_channels,
            probe.in_size,
            probe.stride,
            kernel,
        )
        assert probe.macs == expected, probe.name
        by_block.setdefault(probe.block, {})[probe.role] = probe.macs
    for block, macs in by_block.items():
        n = next(p.out_channels for p in probes if p.block == block)
        assert macs["separable"] / macs["standard"] == pytest.approx(
            predicted_ratio(n, kernel), rel=1e-12
        )


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_probe_graphs_count_their_formula_macs(kernel: int, tmp_path: Path) -> None:
    """The built graphs, counted by the cost model, carry the formula's MACs."""
    for probe in block_probes(0.25, 128, (kernel,), (1, 2, 6, 12, 13)):
        model = build_probe(probe)
        generated = generate_probe(probe, tmp_path)
        assert onnx.load(str(generated.path)) == model
        check_model(model)
        assert model.ir_version == IR_VERSION and model.opset_import[0].version == OPSET
        cost = analyze_model(model)
        expected = formula_macs(
            probe.role,
            probe.in_channels,
            probe.out_channels,
            probe.in_size,
            probe.stride,
            kernel,
        )
        assert cost.total_macs == expected, probe.name
        convs = [n for n in cost.nodes if n.op_type == "Conv"]
        layers = generated.card["layers"]
        assert [layers[n.name]["kind"] for n in convs] == {
            "standard": ["standard"],
            "separable": ["depthwise", "pointwise"],
            "depthwise": ["depthwise"],
            "pointwise": ["pointwise"],
        }[probe.role]
        # each activation belongs to its conv's layer
        assert set(generated.card["nodes"].values()) == {n.name for n in convs}
        assert sum(int(x["macs"]) for x in layers.values()) == expected
        if probe.role == "separable":
            (block,) = cost.blocks
            assert block.mac_ratio == pytest.approx(probe.predicted_ratio)


def test_probe_names() -> None:
    probe = next(p for p in block_probes(1.0, 224) if p.block == 7 and p.role == "standard")
    assert probe.name == "probe_block7_standard_k3_a1.0_r224"
    assert (probe.in_channels, probe.out_channels, probe.in_size, probe.stride) == (
        512,
        512,
        14,
        1,
    )
    assert parse_probe_name(probe.name) == {
        "block": 7,
        "role": "standard",
        "kernel": 3,
        "alpha": 1.0,
        "resolution": 224,
    }
    assert parse_probe_name("mobilenet_v1_1.0_224") is None
    assert tuple(range(1, 14)) == BLOCKS


def test_measured_ratio_arithmetic() -> None:
    assert measured_ratio(2.0, 10.0) == pytest.approx(0.2)
    assert parts_ratio(0.5, 1.4, 10.0) == pytest.approx(0.19)
    assert math.isnan(measured_ratio(2.0, 0.0))
    assert math.isnan(measured_ratio(math.nan, 1.0))
    assert gflop_per_s(1e9, 10.0) == pytest.approx(200.0)  # 2e9 FLOPs in 10 ms
    assert predicted_ratio(64, 3) == pytest.approx(1 / 64 + 1 / 9)


def test_layer_table_pairs_the_probes() -> None:
    """Known times in, known ratios and GFLOP/s out."""
    times = {"standard": 10.0, "separable": 2.5, "depthwise": 1.0, "pointwise": 1.25}
    rows = []
    for probe in block_probes(0.5, 160, (3,), (4,)):
        rows.append(
            {
                "run_id": 1,
                "device": "box",
                "threads": 2,
                "role": probe.role,
                "block": probe.block,
                "kernel": probe.kernel,
                "alpha": probe.alpha,
                "resolution": probe.resolution,
                "in_channels": probe.in_channels,
                "out_channels": probe.out_channels,
                "in_size": probe.in_size,
                "stride": probe.stride,
                "macs": probe.macs,
                "p50_ms": times[probe.role],
                "ci_low_ms": times[probe.role] * 0.99,
                "ci_high_ms": times[probe.role] * 1.01,
                "intensity_flop_per_byte": 1.5,
                "peak_gflop_s": 100.0,
                "bandwidth_gb_s": 10.0,
            }
        )
    table = layer_table(pd.DataFrame(rows))
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["M"], row["N"], row["D_F"], row["stride"], row["D_K"]) == (64, 128, 40, 2, 3)
    assert row["measured_ratio"] == pytest.approx(0.25)
    assert row["parts_ratio"] == pytest.approx(0.225)
    assert row["predicted_ratio"] == pytest.approx(1 / 128 + 1 / 9)
    assert row["mac_ratio"] == pytest.approx(1 / 128 + 1 / 9)
    assert row["depthwise_gflop_s"] == pytest.approx(2 * 9 * 64 * 20 * 20 / 1e-3 / 1e9)
    assert row["standard_ci_rel"] == pytest.approx(0.01)
    # a failed standard probe leaves the ratio empty instead of inventing one
    rows[0]["p50_ms"] = None
    assert math.isnan(layer_table(pd.DataFrame(rows)).iloc[0]["measured_ratio"])


def test_limits_script_prints_its_document() -> None:
    done = subprocess.run(
        [sys.executable, str(LIMITS), "--threads", "1", "--budget", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema"] == "mnbench.limits/1" and doc["status"] == "ok"
    assert doc["peak_gflop_s"] > 0.1 and doc["bandwidth_gb_s"] > 0.1
    assert doc["gemm"]["reps"] >= 1 and doc["copy"]["bytes"] >= 64 * 2**20
    assert doc["threads"] == 1
    bad = subprocess.run(
        [sys.executable, str(LIMITS), "--budget", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and json.loads(bad.stdout)["status"] == "error"


@pytest.fixture(scope="module")
def layers_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mnbench layers`` on two blocks of 0.25/128 (block 2 stride 2, block 13 the widest)."""
    tmp = tmp_path_factory.mktemp("layers")
    rc = main(
        [
            "layers",
            "--alpha",
            "0.25",
            "--resolution",
            "128",
            "--trials",
            "1",
            "--block",
            "2",
            "13",
            "--threads",
            "1",
            "--db",
            str(tmp / "db.sqlite"),
            "--models-dir",
            str(tmp / "models"),
            *FAST,
        ]
    )
    assert rc == 0
    return tmp


def test_layers_end_to_end(layers_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = layers_run / "db.sqlite"
    with Store.open(db) as store:
        probes = store.probes_frame([1])
        run = store.get_run(1)
    assert len(probes) == 8 and (probes["status"] == "ok").all()
    assert set(probes["variant"]) == {
        "probe-standard",
        "probe-separable",
        "probe-depthwise",
        "probe-pointwise",
    }
    assert (probes["intensity_flop_per_byte"] > 0).all()
    assert run.label == "layers"
    assert run.device_facts["limits"]["status"] == "ok"
    assert (probes["peak_gflop_s"] > 0).all()

    capsys.readouterr()
    assert main(["layers", "--from-run", "latest", "--db", str(db), "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(table["block"]) == [2, 13]
    assert list(table["N"]) == [32, 256] and list(table["M"]) == [16, 256]
    assert table["predicted_ratio"].tolist() == pytest.approx([1 / 32 + 1 / 9, 1 / 256 + 1 / 9])
    for row in table.to_dict("records"):
        block = probes[probes["block"] == row["block"]].set_index("role")
        assert row["standard_ms"] == pytest.approx(float(block.at["standard", "p50_ms"]))
        assert row["measured_ratio"] == pytest.approx(
            float(block.at["separable", "p50_ms"]) / float(block.at["standard", "p50_ms"])
        )
        assert row["depthwise_gflop_s"] > 0 and row["pointwise_gflop_s"] > 0

    assert main(["layers", "--from-run", "1", "--db", str(db)]) == 0
    out = capsys.readouterr()
    assert "pred 1/N+1/D_K²" in out.out and "meas ratio" in out.out
    assert main(["layers", "--from-run", "1", "--db", str(db), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["block"] for r in records] == [2, 13]


def test_report_gains_the_layer_charts(layers_run: Path) -> None:
    files = build_report(layers_run / "db.sqlite", ["latest"], None, layers_run / "report")
    names = {p.name for p in files.images + files.data}
    for chart in ("layer_ratio", "ratio_vs_channels", "roofline"):
        assert f"{chart}.png" in names and f"{chart}.csv" in names
    ratio = pd.read_csv(files.out_dir / "layer_ratio.csv")
    assert sorted(ratio["block"]) == [2, 13]
    roofline = pd.read_csv(files.out_dir / "roofline.csv")
    assert set(roofline["role"]) == {"standard", "depthwise", "pointwise"}
    assert (roofline["peak_gflop_s"] > 0).all()
    html = files.html.read_text(encoding="utf-8")
    assert "Roofline" in html and "1/N + 1/D_K²" in html
    # the probes are not whole models: the grid charts say there is no grid data
    assert not (files.out_dir / "latency_heatmap.csv").exists()


def test_bad_block_and_kernel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["layers", "--db", str(tmp_path / "db.sqlite"), "--models-dir", str(tmp_path)]
    assert main([*base, "--block", "14"]) == 2
    assert "--block '14' is out of range: give 1 to 13" in capsys.readouterr().err
    assert main([*base, "--kernel", "4"]) == 2
    assert "--kernel 4" in capsys.readouterr().err
    assert main(["layers", "--db", str(tmp_path / "none.sqlite"), "--from-run", "1"]) == 2
