"""The mission chart's data, the report's opening answers and the compact device facts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mobilenet.architecture import scaled_layers
from mobilenet.layers import layer_table
from mobilenet.probes import block_probes
from reports.accuracy import reference_accuracy
from reports.answers import report_answers
from reports.build import draw_charts
from reports.html import compact_facts, core_lines
from reports.mission import (
    MISSION_SERIES,
    MissionSeries,
    departures,
    mission_chart,
    mission_points,
    model_predicted_ratio,
    ratio_of,
)
from tests.reports.frames import grid_rows, results_frame, run_row, runs_frame


@pytest.mark.parametrize(("alpha", "resolution", "kernel"), [(1.0, 224, 3), (0.25, 128, 5)])
def test_whole_model_prediction_is_the_formula_applied_per_block(
    alpha: float, resolution: int, kernel: int
) -> None:
    """1/N + 1/D_K² per block, weighted by the standard MACs, gives exactly the MAC ratio of
    the two architectures (and by weights, their weight ratio): the paper's algebra."""
    sep = scaled_layers(alpha, resolution, "separable", kernel)
    std = scaled_layers(alpha, resolution, "standard", kernel)
    assert model_predicted_ratio(alpha, resolution, kernel) == pytest.approx(
        sum(x.macs for x in sep) / sum(x.macs for x in std), rel=1e-12
    )
    assert model_predicted_ratio(alpha, resolution, kernel, "params") == pytest.approx(
        sum(x.weight_count for x in sep) / sum(x.weight_count for x in std), rel=1e-12
    )


def probe_rows(times: dict[str, float], blocks: tuple[int, ...]) -> pd.DataFrame:
    rows = []
    for probe in block_probes(0.5, 160, (3,), blocks):
        weights = {"standard": 9 * probe.in_channels * probe.out_channels}.get(
            probe.role, 9 * probe.in_channels + probe.in_channels * probe.out_channels
        )
        rows.append(
            {
                "run_id": 3,
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
                "params": weights,
                "weight_bytes": 4 * weights,
                "peak_rss_bytes": 80e6,
                "p50_ms": times[probe.role] * probe.macs / 1e6,
                "ci_low_ms": 1.0,
                "ci_high_ms": 1.0,
                "intensity_flop_per_byte": 2.0 if probe.role == "depthwise" else 20.0,
                "peak_gflop_s": 100.0,
                "bandwidth_gb_s": 10.0,
            }
        )
    return pd.DataFrame(rows)


def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    # ms per million MACs: the depthwise part is ten times slower per MAC than dense convs
    times = {"standard": 0.01, "separable": 0.02, "depthwise": 0.1, "pointwise": 0.01}
    layers = layer_table(probe_rows(times, (2, 7, 13)))
    results = results_frame(grid_rows(1, "box", "1.31.1", variants=("separable", "standard")))
    runs = runs_frame([run_row(1, "box", "1.31.1", "demo"), run_row(3, "box", "1.31.1", "l")])
    return runs, results, layers


def test_points_per_series_and_level() -> None:
    _, results, layers = frames()
    points = mission_points(results, layers)
    assert set(points["series"]) == {s.key for s in MISSION_SERIES}
    blocks = points[points["level"] == "block"]
    models = points[points["level"] == "model"]
    assert sorted(set(blocks["item"])) == ["13", "2", "7"] and len(set(models["item"])) == 16
    flops = blocks[blocks["series"] == "flops"]  # the probes' MACs are the exact formulas
    assert (flops["ratio"] / flops["predicted_ratio"]).to_numpy() == pytest.approx(1.0)
    params = blocks[blocks["series"] == "params"]
    assert (params["ratio"] / params["predicted_ratio"]).to_numpy() == pytest.approx(1.0)
    latency = blocks[blocks["series"] == "latency"]
    # separable 0.02 ms/MMAC against standard 0.01: twice the MAC ratio
    assert (latency["ratio"] / latency["predicted_ratio"]).to_numpy() == pytest.approx(2.0)
    found = {(d.series, d.level): d for d in departures(points)}
    assert found["latency", "block"].above == 3 and found["latency", "block"].count == 3
    assert found["latency", "block"].median_factor == pytest.approx(2.0)
    assert found["peak_rss", "block"].median_factor > 5  # the runtime's own memory


def test_chart_reads_the_departure_and_the_reason() -> None:
    _, _, layers = frames()
    chart = mission_chart(results_frame(grid_rows(1, "box", "1.31.1")), layers)  # blocks only
    assert chart.has_image and chart.svg is not None
    assert "latency (median time), per block: 2.00× the prediction" in chart.reading
    assert "above it in 3 of 3" in chart.reading
    assert (
        "On the line within ±10 % everywhere: FLOPs (counted), memory: parameters, memory: "
        "weight bytes." in chart.reading
    )
    assert "under a measured GEMM peak of 100 GFLOP/s" in chart.reading
    assert "bound by the 10 GB/s copy bandwidth to 20 GFLOP/s" in chart.reading


def test_another_series_is_one_more_entry() -> None:
    _, results, layers = frames()
    halved = MissionSeries(
        "half",
        "half the prediction",
        "#000000",
        "P",
        lambda frame: frame["predicted_ratio"] / 2,
        lambda frame: frame["predicted_ratio_macs"] / 2,
    )
    points = mission_points(results, layers, (*MISSION_SERIES, halved))
    half = points[points["series"] == "half"]
    assert len(half) == 3 + 16
    assert (half["ratio"] / half["predicted_ratio"]).to_numpy() == pytest.approx(0.5)
    assert (
        "half the prediction, per block: 0.50×"
        in mission_chart(results, layers, (*MISSION_SERIES, halved)).reading
    )


def test_no_data_says_what_to_run() -> None:
    results = results_frame(grid_rows(1, "box", "1.31.1"))
    chart = mission_chart(results, None)
    assert not chart.has_image
    assert "mnbench layers" in chart.hint and "--variant separable standard" in chart.hint
    # models only: the chart is drawn from the whole-model pairs alone
    both = results_frame(grid_rows(1, "box", "1.31.1", variants=("separable", "standard")))
    assert mission_chart(both, None).has_image


def test_ratio_of_leaves_missing_values_empty() -> None:
    frame = pd.DataFrame({"a": [1.0, 0.0, None], "b": [2.0, 1.0, 1.0]})
    values = ratio_of("a", "b")(frame).tolist()
    assert values[0] == 0.5 and math.isnan(values[1]) and math.isnan(values[2])
    assert ratio_of("a", "missing")(frame).isna().all()


def test_answers_lead_with_budget_range_ratio_and_noise() -> None:
    runs, results, layers = frames()
    charts = draw_charts(runs, results, reference_accuracy(), layers=layers)
    assert charts[0].name == "mission"
    answers = report_answers(results, charts)
    assert answers.picks and answers.picks[0].cell == "0.25/128"
    assert [p.top1 for p in answers.picks] == sorted(p.top1 for p in answers.picks)
    assert answers.picks[-1].cell == "1.0/224"
    assert "0.25/128" in answers.fastest and "1.0/224" in answers.latency_range
    assert "per block the measured ratio is above the prediction in 3 of 3" in (
        answers.separable_standard
    )
    lines = answers.headline()
    assert [line.split(":")[0] for line in lines] == ["fastest", "separable/standard", "stability"]
    assert answers.noise.endswith("0 of 32 results flagged unreliable")


def test_compact_facts() -> None:
    facts = {
        "cpu_model": "AMD EPYC 7B13",
        "board_model": None,
        "hardware": "",
        "thermal": [],
        "cores": [
            {"cpu": 0, "core_type": "AMD EPYC", "max_freq_khz": None, "governor": None},
            {"cpu": 1, "core_type": "AMD EPYC", "max_freq_khz": None, "governor": None},
        ],
        "core_types": {"AMD EPYC": 2},
        "mem_total_bytes": 8 * 1024**3,
        "psutil": {"cpu_freq_mhz": {"current": 2450.0, "max": 0.0}, "logical_cores": 2},
        "device": {"name": "local", "kind": "local"},
    }
    rows = dict(compact_facts(facts))
    assert rows["cores"] == "2 × AMD EPYC, no cpufreq"
    assert rows["mem_total_bytes"] == "8.0 GiB"
    assert rows["psutil.cpu_freq_mhz.current"] == "2450"
    for gone in ("board_model", "hardware", "thermal", "core_types", "device.name"):
        assert gone not in rows
    assert "psutil.cpu_freq_mhz.max" not in rows and "psutil.logical_cores" not in rows
    big_little = [
        {"cpu": i, "core_type": t, "max_freq_khz": f, "governor": "schedutil"}
        for i, (t, f) in enumerate([("Cortex-A55", 1800000)] * 4 + [("Cortex-A76", 2400000)] * 4)
    ]
    assert core_lines(big_little) == (
        "4 × Cortex-A55, up to 1800 MHz, schedutil; 4 × Cortex-A76, up to 2400 MHz, schedutil"
    )
