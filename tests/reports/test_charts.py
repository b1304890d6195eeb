"""Charts from result frames: overlays of two devices, fitted values, and the no-data path."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from reports import charts
from reports.accuracy import reference_accuracy
from tests.reports.frames import (
    MACS_1_224,
    grid_rows,
    result_row,
    results_frame,
    two_device_frames,
)

LABELS = {1: "#1 desktop · ORT 1.31.1 · base", 2: "#2 rpi4 · ORT 1.17.0 · board"}


def assert_png(data: bytes | None) -> None:
    """A decodable PNG of a sensible size that is not a single colour."""
    assert data is not None
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.width > 400 and image.height > 300
    pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10


def test_heatmap_overlays_two_devices() -> None:
    _, results = two_device_frames()
    chart = charts.latency_heatmap(results, LABELS)
    assert_png(chart.png)
    assert set(chart.data["run_id"]) == {1, 2}
    # desktop separable fp32, desktop standard fp32, board fp32, board int8
    panels = chart.data.groupby(["run_id", "variant", "precision"]).size()
    assert len(panels) == 4
    failed = chart.data[
        (chart.data["run_id"] == 1)
        & (chart.data["alpha"] == 1.0)
        & (chart.data["resolution"] == 128)
        & (chart.data["variant"] == "separable")
    ]
    assert failed.empty  # the failed cell is not drawn as a number
    assert "#2 rpi4" in chart.reading and "#1 desktop" in chart.reading


def test_latency_vs_macs_recovers_the_power_law() -> None:
    rows = []
    for alpha in (1.0, 0.75, 0.5, 0.25):
        for resolution in (224, 192, 160, 128):
            row = result_row(7, "x", "1.31.1", alpha, resolution)
            row["p50_ms"] = 0.01 * (float(row["macs"]) / 1e6) ** 0.8  # type: ignore[arg-type]
            rows.append(row)
    chart = charts.latency_vs_macs(results_frame(rows), {7: "#7 x"})
    assert_png(chart.png)
    assert chart.svg is not None and chart.svg.startswith(b"<?xml")
    assert chart.data["fit_slope"].round(6).unique().tolist() == [0.8]
    assert "slope 0.80" in chart.reading
    assert "10× the MACs costs 6.3× the time" in chart.reading


def test_latency_vs_macs_one_series_per_run_and_precision() -> None:
    _, results = two_device_frames()
    chart = charts.latency_vs_macs(results, LABELS)
    series = set(chart.data["series"])
    assert len(series) == 4  # desktop separable, desktop standard, board fp32, board int8
    assert any("int8" in s for s in series) and any("standard" in s for s in series)


def test_pareto_front() -> None:
    latency = [1.0, 2.0, 3.0, 2.5, 4.0]
    top1 = [40.0, 50.0, 45.0, 60.0, 60.0]
    assert charts.pareto_front(latency, top1) == [0, 1, 3]


def test_latency_accuracy_joins_reference_and_skips_standard() -> None:
    _, results = two_device_frames()
    chart = charts.latency_accuracy(results, LABELS, reference_accuracy())
    assert_png(chart.png)
    data = chart.data
    assert set(data["precision"]) == {"fp32", "int8"}
    assert not data["name"].str.contains("standard").any()
    top = data[(data["run_id"] == 2) & (data["alpha"] == 1.0) & (data["resolution"] == 224)]
    assert sorted(top["top1"]) == [70.1, 70.9]
    # every frontier point is undominated; the fastest and the most accurate are on it
    for _, part in data.groupby(["run_id", "precision"]):
        front = part[part["pareto"]]
        assert bool(part.sort_values("p50_ms")["pareto"].iloc[0])
        assert front["top1"].max() == part["top1"].max()
        for row in front.itertuples():
            better = part[(part["p50_ms"] <= row.p50_ms) & (part["top1"] > row.top1)]
            assert better.empty
    assert "Pareto-optimal" in chart.reading and "0.25/128" in chart.reading


def test_prediction_ratio_and_absence() -> None:
    _, results = two_device_frames()
    chart = charts.prediction_chart(results, LABELS)
    assert_png(chart.png)
    assert set(chart.data["run_id"]) == {1}  # only the desktop measured both variants
    row = chart.data[(chart.data["alpha"] == 0.5) & (chart.data["resolution"] == 160)].iloc[0]
    assert row["latency_ratio"] == pytest.approx(row["p50_ms_sep"] / row["p50_ms_std"])
    assert row["mac_ratio"] == pytest.approx(MACS_1_224["separable"] / MACS_1_224["standard"])
    assert "1/N + 1/D_K²" in chart.reading
    separable_only = results[results["variant"] == "separable"]
    missing = charts.prediction_chart(separable_only, LABELS)
    assert missing.png is None
    assert missing.hint == "mnbench run --variant separable standard"
    assert "both" in missing.missing


def test_memory_chart() -> None:
    _, results = two_device_frames()
    chart = charts.memory_chart(results, LABELS)
    assert_png(chart.png)
    assert "peak RSS ≈ 38 MiB + 2.20 × weight MiB" in chart.reading
    no_rss = results.assign(peak_rss_bytes=math.nan, peak_rss_load_bytes=math.nan)
    assert charts.memory_chart(no_rss, LABELS).png is not None  # model sizes still drawn


@pytest.mark.parametrize(
    "chart_name", ["latency_heatmap", "latency_vs_macs", "memory", "prediction"]
)
def test_empty_results_give_reasons(chart_name: str) -> None:
    empty = results_frame([])
    chart = getattr(
        charts,
        {"memory": "memory_chart", "prediction": "prediction_chart"}.get(chart_name, chart_name),
    )(empty, {})
    assert chart.png is None and chart.svg is None
    assert chart.missing and chart.hint.startswith("mnbench ")


def test_accuracy_without_separable_models() -> None:
    rows = grid_rows(1, "d", "1.31.1", variants=("standard",))
    chart = charts.latency_accuracy(results_frame(rows), {}, reference_accuracy())
    assert chart.png is None
    assert chart.hint == "mnbench run --variant separable"
    fp16 = grid_rows(1, "d", "1.31.1", precisions=("fp16",))
    chart = charts.latency_accuracy(results_frame(fp16), {}, reference_accuracy())
    assert chart.png is None and "--accuracy" in chart.hint and "fp16" in chart.missing


def test_store_dtypes_with_missing_values() -> None:
    """Nullable Int64 columns with <NA> (as results.store returns them) are handled."""
    _, results = two_device_frames()
    results = results.copy()
    for column in ("run_id", "resolution", "kernel", "threads", "macs", "params", "peak_rss_bytes"):
        results[column] = pd.array(
            [
                None if (i % 7 == 0 and column != "run_id") else (None if pd.isna(v) else int(v))
                for i, v in enumerate(results[column])
            ],
            dtype="Int64",
        )
    for function in (
        charts.latency_heatmap,
        charts.latency_vs_macs,
        charts.memory_chart,
        charts.prediction_chart,
    ):
        assert function(results, LABELS).png is not None


def test_time_share_hook() -> None:
    assert charts.time_share_chart(None).missing.startswith("the selected runs hold no")
    assert charts.time_share_chart(None).hint == "mnbench run --profile"
    profile = pd.DataFrame(
        {
            "run_id": [1, 1, 1, 1, 1, 2, 2, 2, 2],
            "kind": [
                "stem",
                "depthwise",
                "depthwise",
                "pointwise",
                "fc",
                "stem",
                "depthwise",
                "pointwise",
                "fc",
            ],
            "time_ms": [0.2, 0.5, 0.5, 3.0, 0.1, 1.0, 4.0, 10.0, 0.5],
            "macs": [10.8e6, 9e6, 8.4e6, 540e6, 1e6, 10.8e6, 17.4e6, 540e6, 1e6],
        }
    )
    chart = charts.time_share_chart(profile, {1: "a", 2: "b"})
    assert_png(chart.png)
    sums = chart.data.groupby("run_id")[["time_share", "mac_share"]].sum()
    assert np.allclose(sums.to_numpy(), 1.0)
    depthwise = chart.data[(chart.data["run_id"] == 1) & (chart.data["kind"] == "depthwise")]
    assert float(depthwise["time_share"].iloc[0]) == pytest.approx(1.0 / 4.3)
    assert "depthwise layers take 23.3 % of the time" in chart.reading
