"""Charts' data and readings, checked without drawing: no ``Figure`` is created here.

Every chart module splits its data (a pure function of frames), its drawing and its reading;
these tests call the data and reading parts only, with figures forbidden, so the numbers and
words of a chart are pinned without matplotlib rendering anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd
import pytest
from matplotlib.figure import Figure

from reports.charts.chart import Missing
from reports.charts.heatmap import Heatmap, heatmap_data, heatmap_reading, panel_sentence
from reports.charts.layer_ratio import LayerRatio, layer_ratio_data, layer_ratio_reading
from reports.charts.memory import Memory, memory_data, memory_reading
from reports.charts.roofline import Roofline, roofline_data, roofline_reading
from reports.charts.separable_ratio import (
    SeparableRatio,
    separable_ratio_data,
    separable_ratio_reading,
)
from reports.charts.time_share import TimeShare, time_share_data, time_share_reading
from reports.charts.vs_macs import LatencyVsMacs, vs_macs_data, vs_macs_reading
from tests.reports.frames import MACS_1_224, result_row, results_frame, two_device_frames

LABELS = {1: "#1 desktop", 2: "#2 rpi4"}


@pytest.fixture(autouse=True)
def no_drawing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any figure created during a test fails it: data and reading never draw."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a chart's data or reading created a Figure")

    monkeypatch.setattr(Figure, "__init__", refuse)
    yield


def test_heatmap_panels_and_extremes() -> None:
    _, results = two_device_frames()
    data = heatmap_data(results, LABELS)
    assert isinstance(data, Heatmap)
    # desktop separable and standard, board fp32 and int8: one panel each
    assert [(p.series, p.config) for p in data.panels] == [
        ("#1 desktop", "separable fp32, 4 threads"),
        ("#1 desktop", "standard fp32, 4 threads"),
        ("#2 rpi4", "separable fp32, 4 threads"),
        ("#2 rpi4", "separable int8, 4 threads"),
    ]
    desktop = data.panels[0]
    assert desktop.alphas == (1.0, 0.75, 0.5, 0.25) and desktop.resolutions == (128, 160, 192, 224)
    assert math.isnan(desktop.p50_ms[0][0])  # the failed 1.0/128 cell is no number
    assert desktop.fastest.cell == "0.25/128" and desktop.slowest.cell == "1.0/224"
    assert desktop.slowest.macs / desktop.fastest.macs == pytest.approx(49.0)
    assert panel_sentence(desktop).endswith("for 49.0× the MACs)")
    assert data.low_ms == pytest.approx(results["p50_ms"].min())
    reading = heatmap_reading(data)
    assert reading.startswith("Each cell is the median latency over trials")
    assert "#2 rpi4 (separable int8, 4 threads)" in reading and "Only the first" not in reading


def test_heatmap_without_grid_cells_says_what_to_run() -> None:
    data = heatmap_data(results_frame([]), {})
    assert isinstance(data, Missing) and data.hint == "mnbench run"


def test_vs_macs_fits_the_power_law() -> None:
    rows = []
    for alpha in (1.0, 0.5, 0.25):
        for resolution in (224, 128):
            row = result_row(7, "x", "1.31.1", alpha, resolution)
            row["p50_ms"] = 0.01 * (float(row["macs"]) / 1e6) ** 0.8  # type: ignore[arg-type]
            rows.append(row)
    data = vs_macs_data(results_frame(rows), {7: "#7 x"})
    assert isinstance(data, LatencyVsMacs)
    (line,) = data.series
    assert line.fit is not None and line.fit[0] == pytest.approx(0.8)
    assert line.smallest.macs < line.largest.macs
    assert {label.text for label in line.labels} <= {
        "1.0/224",
        "1.0/128",
        "0.5/224",
        "0.5/128",
        "0.25/224",
        "0.25/128",
    }
    assert data.variants == ("separable",)
    reading = vs_macs_reading(data)
    assert "#7 x: slope 0.80" in reading and "10× the MACs costs 6.3× the time" in reading


def test_vs_macs_needs_two_models() -> None:
    one = results_frame([result_row(1, "x", "1.31.1", 1.0, 224)])
    data = vs_macs_data(one, {})
    assert isinstance(data, Missing) and "fewer than two models" in data.reason


def test_separable_ratio_pairs_cells_of_one_run() -> None:
    _, results = two_device_frames()
    data = separable_ratio_data(results, LABELS)
    assert isinstance(data, SeparableRatio)
    assert [s.name for s in data.series] == ["#1 desktop"]  # only run 1 measured both variants
    assert data.cells[0] == "1.0/224" and len(data.cells) == 15  # 1.0/128 failed
    expected = MACS_1_224["separable"] / MACS_1_224["standard"]
    assert data.mac_ratio == pytest.approx([expected] * 15)
    assert data.kernels == (3,)
    reading = separable_ratio_reading(data)
    assert f"where MACs predict {expected:.2f}–{expected:.2f}" in reading


def test_memory_fit_and_largest_activation() -> None:
    _, results = two_device_frames()
    data = memory_data(results, LABELS)
    assert isinstance(data, Memory)
    fits = [line.fit for line in data.rss if line.fit is not None]
    assert fits and fits[0][1] == pytest.approx(2.2)  # 2.2 × the weights, as the frames say
    assert data.largest_activation is not None
    assert data.largest_activation.model == "mobilenet_v1_1.0_224"
    assert "peak RSS ≈ 38 MiB + 2.20 × weight MiB" in memory_reading(data)
    no_rss = results.assign(peak_rss_bytes=float("nan"), peak_rss_load_bytes=float("nan"))
    sizes_only = memory_data(no_rss, LABELS)
    assert isinstance(sizes_only, Memory) and sizes_only.rss == () and not sizes_only.models.empty


def test_time_share_per_run_and_kind() -> None:
    profile = pd.DataFrame(
        {
            "run_id": [1, 1, 1, 1],
            "kind": ["stem", "depthwise", "pointwise", "Softmax"],
            "time_ms": [1.0, 2.0, 1.0, None],
            "macs": [10.0, 10.0, 80.0, 0.0],
        }
    )
    data = time_share_data(profile, {1: "a"})
    assert isinstance(data, TimeShare)
    assert data.kinds == ("stem", "depthwise", "pointwise", "other")
    assert data.runs[0].time_share == pytest.approx((25.0, 50.0, 25.0, 0.0))
    assert data.mac_share == pytest.approx((10.0, 10.0, 80.0, 0.0))
    assert data.runs[0].depthwise == pytest.approx((50.0, 10.0))
    assert "a: depthwise layers take 50.0 % of the time for 10.0 % of the MACs (5.0×" in (
        time_share_reading(data)
    )
    assert isinstance(time_share_data(None, {}), Missing)


def layer_table() -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame(
        {
            "run_id": [3, 3],
            "device": ["d", "d"],
            "threads": [1, 1],
            "alpha": [0.25, 0.25],
            "resolution": [128, 128],
            "block": [2, 13],
            "N": [16, 256],
            "D_K": [3, 3],
            "predicted_ratio": [1 / 16 + 1 / 9, 1 / 256 + 1 / 9],
            "measured_ratio": [0.35, 0.23],
            "mac_ratio": [0.17, 0.115],
            "standard_gflop_s": [20.0, 40.0],
            "standard_intensity": [8.0, 60.0],
            "depthwise_gflop_s": [1.0, 2.0],
            "depthwise_intensity": [0.5, 0.9],
            "pointwise_gflop_s": [10.0, 30.0],
            "pointwise_intensity": [4.0, 40.0],
            "peak_gflop_s": [50.0, 50.0],
            "bandwidth_gb_s": [10.0, 10.0],
        }
    )
    return frame


def test_layer_ratio_reads_the_measured_over_predicted_factor() -> None:
    data = layer_ratio_data(layer_table(), {3: "#3 board"})
    assert isinstance(data, LayerRatio)
    assert data.runs == (3,) and data.kernels == (3,) and data.names == {3: "#3 board"}
    factors = (0.35 / (1 / 16 + 1 / 9), 0.23 / (1 / 256 + 1 / 9))
    reading = layer_ratio_reading(data)
    assert f"#3 board: measured/predicted {min(factors):.1f}–{max(factors):.1f}×" in reading
    assert "fitted kernels" not in reading  # no latency model given
    missing = layer_ratio_data(None, {})
    assert isinstance(missing, Missing) and missing.hint == "mnbench layers"


def test_roofline_ridge_and_memory_bound_layers() -> None:
    data = roofline_data(layer_table(), {3: "#3 board"})
    assert isinstance(data, Roofline)
    (run,) = data.runs
    assert run.has_ceilings and len(run.points) == 6
    assert data.x_low == pytest.approx(0.25) and data.x_high == pytest.approx(120.0)
    reading = roofline_reading(data)
    assert "#3 board: ridge point at 5.0 FLOP/byte; 2 of 2 depthwise layers lie left" in reading
    assert "above the measured GEMM peak" not in reading
