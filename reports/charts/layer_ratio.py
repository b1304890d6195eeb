"""Chart 7: per separable block, the measured separable/standard time ratio against the
predicted 1/N + 1/D_K², with y = x (and the latency model's ratio when fitted)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.charts.chart import Chart, Missing, compose, join
from reports.charts.layer_probes import NO_PROBES, draw_model_ratios, model_sentence, probe_points
from reports.charts.series import run_label
from reports.charts.style import KERNEL_MARKERS, colour, finish_axes

NAME = "layer_ratio"
TITLE = "Per layer: measured vs predicted separable/standard ratio"
CSV_COLUMNS: tuple[str, ...] = (
    "run_id",
    "device",
    "threads",
    "alpha",
    "resolution",
    "block",
    "M",
    "N",
    "D_F",
    "stride",
    "D_K",
    "predicted_ratio",
    "mac_ratio",
    "measured_ratio",
    "parts_ratio",
    "model_ratio",
    "roofline_ratio",
    "standard_ms",
    "separable_ms",
)


@dataclass(frozen=True)
class LayerRatio:
    points: pd.DataFrame
    """One row per block and run: predicted, measured, model and roofline ratios."""
    runs: tuple[int, ...]
    kernels: tuple[int, ...]
    names: dict[int, str]
    """Each run's label."""
    low: float
    """Both axes' range, shared so y = x is the diagonal."""
    high: float
    rows: pd.DataFrame


def layer_ratio_data(
    layers: pd.DataFrame | None, labels: dict[int, str], model_ratios: pd.DataFrame | None = None
) -> LayerRatio | Missing:
    """The points of the chart (or why there are none)."""
    frame = probe_points(layers, model_ratios)
    if frame.empty:
        return NO_PROBES
    runs = tuple(sorted({int(r) for r in frame["run_id"]}))
    values = np.concatenate(
        [
            frame["measured_ratio"].to_numpy(dtype=float),
            frame["predicted_ratio"].to_numpy(float),
            frame["model_ratio"].to_numpy(float),
            frame["roofline_ratio"].to_numpy(float),
        ]
    )
    return LayerRatio(
        points=frame,
        runs=runs,
        kernels=tuple(sorted({int(k) for k in frame["D_K"]})),
        names={run_id: run_label(labels, run_id) for run_id in runs},
        low=float(np.nanmin(values)) / 1.3,
        high=float(np.nanmax(values)) * 1.3,
        rows=frame[[c for c in CSV_COLUMNS if c in frame.columns]].reset_index(drop=True),
    )


def draw_layer_ratio(data: LayerRatio) -> Figure:
    fig = Figure(figsize=(8.0, 6.0), layout="constrained")
    ax = fig.subplots()
    frame = data.points
    for index, run_id in enumerate(data.runs):
        part = frame[frame["run_id"] == run_id]
        for k_index, kernel in enumerate(data.kernels):
            sub = part[part["D_K"] == kernel]
            if sub.empty:
                continue
            ax.scatter(
                sub["predicted_ratio"],
                sub["measured_ratio"],
                color=colour(index),
                marker=KERNEL_MARKERS[k_index % len(KERNEL_MARKERS)],
                s=40,
                zorder=3,
                edgecolors="white",
                linewidths=0.5,
                label=f"{data.names[run_id]}, D_K={kernel}",
            )
            for block, x, y in zip(
                sub["block"], sub["predicted_ratio"], sub["measured_ratio"], strict=True
            ):
                ax.annotate(
                    str(int(block)),
                    (float(x), float(y)),
                    textcoords="offset points",
                    xytext=(3, 3),
                    fontsize=6,
                    color="#555555",
                )
    draw_model_ratios(ax, frame, "predicted_ratio")
    low, high = data.low, data.high
    ax.plot(
        [low, high],
        [low, high],
        color="#000000",
        linestyle="--",
        linewidth=1.0,
        label="y = x (time follows MACs)",
    )
    finish_axes(
        ax,
        "predicted ratio 1/N + 1/D_K² (log scale)",
        "measured ratio: separable time / standard time (log scale)",
        "Does the measured cost follow 1/N + 1/D_K²? (numbers: block)",
    )
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    return fig


def layer_ratio_reading(data: LayerRatio) -> str:
    sentences: list[str] = []
    for run_id in data.runs:
        part = data.points[data.points["run_id"] == run_id]
        factor = (part["measured_ratio"] / part["predicted_ratio"]).to_numpy(dtype=float)
        sentences.append(
            f"{data.names[run_id]}: measured/predicted "
            f"{float(np.nanmin(factor)):.1f}–{float(np.nanmax(factor)):.1f}× (median "
            f"{float(np.nanmedian(factor)):.1f}×)"
        )
    return (
        "One point per separable block, timed as single-layer probes (the standard conv, "
        "and the depthwise + pointwise pair). Points above the dashed line cost more time "
        "than their MACs predict: the depthwise part runs at a lower MAC throughput than "
        "the dense convs. " + join(sentences) + model_sentence(data.points) + "."
    )


def layer_ratio_chart(
    layers: pd.DataFrame | None,
    labels: dict[int, str],
    model_ratios: pd.DataFrame | None = None,
) -> Chart:
    """Measured separable/standard time ratio per layer against 1/N + 1/D_K², with y = x;
    with ``model_ratios`` also the latency model's and the roofline's ratio per block."""
    return compose(
        NAME,
        TITLE,
        layer_ratio_data(layers, labels, model_ratios),
        draw_layer_ratio,
        layer_ratio_reading,
        svg=True,
    )
