"""Chart 8: the measured separable/standard ratio against the output channels N, per D_K,
over the prediction curves 1/N + 1/D_K² (Howard et al. 2017, eq. 5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.charts.chart import Chart, Missing, compose, join
from reports.charts.layer_probes import NO_PROBES, draw_model_ratios, model_sentence, probe_points
from reports.charts.series import run_label
from reports.charts.style import KERNEL_MARKERS, colour, finish_axes

NAME = "ratio_vs_channels"
TITLE = "Separable/standard ratio against output channels N"
CSV_COLUMNS: tuple[str, ...] = (
    "run_id",
    "block",
    "N",
    "D_K",
    "predicted_ratio",
    "measured_ratio",
    "model_ratio",
    "roofline_ratio",
)


@dataclass(frozen=True)
class KernelRun:
    """The blocks of one D_K in one run."""

    kernel: int
    run_index: int
    """The run's position (its marker)."""
    name: str
    points: pd.DataFrame


@dataclass(frozen=True)
class RatioVsChannels:
    kernels: tuple[int, ...]
    groups: tuple[KernelRun, ...]
    """In drawing order: by kernel, then by run."""
    n_low: float
    """The range of N the prediction curves span."""
    n_high: float
    points: pd.DataFrame
    rows: pd.DataFrame


def channels_data(
    layers: pd.DataFrame | None, labels: dict[int, str], model_ratios: pd.DataFrame | None = None
) -> RatioVsChannels | Missing:
    """The points and curves of the chart (or why there are none)."""
    frame = probe_points(layers, model_ratios)
    if frame.empty:
        return NO_PROBES
    kernels = tuple(sorted({int(k) for k in frame["D_K"]}))
    runs = sorted({int(r) for r in frame["run_id"]})
    groups: list[KernelRun] = []
    for kernel in kernels:
        for r_index, run_id in enumerate(runs):
            sub = frame[(frame["D_K"] == kernel) & (frame["run_id"] == run_id)]
            if not sub.empty:
                groups.append(KernelRun(kernel, r_index, run_label(labels, run_id), sub))
    n_values = frame["N"].to_numpy(dtype=float)
    return RatioVsChannels(
        kernels=kernels,
        groups=tuple(groups),
        n_low=max(1.0, float(n_values.min()) / 1.5),
        n_high=float(n_values.max()) * 1.5,
        points=frame,
        rows=frame[list(CSV_COLUMNS)].reset_index(drop=True),
    )


def draw_channels(data: RatioVsChannels) -> Figure:
    fig = Figure(figsize=(8.5, 5.6), layout="constrained")
    ax = fig.subplots()
    n_line = np.geomspace(data.n_low, data.n_high, 60)
    for k_index, kernel in enumerate(data.kernels):
        ax.plot(
            n_line,
            1.0 / n_line + 1.0 / kernel**2,
            color=colour(k_index),
            linewidth=1.3,
            label=f"predicted 1/N + 1/{kernel}² (D_K={kernel})",
        )
        for group in (g for g in data.groups if g.kernel == kernel):
            ax.scatter(
                group.points["N"],
                group.points["measured_ratio"],
                color=colour(k_index),
                marker=KERNEL_MARKERS[group.run_index % len(KERNEL_MARKERS)],
                s=36,
                zorder=3,
                edgecolors="white",
                linewidths=0.5,
                label=f"measured, D_K={kernel}: {group.name}",
            )
    draw_model_ratios(ax, data.points, "N")
    finish_axes(
        ax,
        "output channels N (log scale)",
        "separable / standard (log scale, lower = cheaper)",
        "Measured ratio vs N, over the curves 1/N + 1/D_K²",
        x_base=2,
        legend="upper right",
    )
    return fig


def channels_reading(data: RatioVsChannels) -> str:
    sentences = [
        f"D_K={g.kernel} ({g.name}): measured "
        f"{float(g.points['measured_ratio'].min()):.2f}–"
        f"{float(g.points['measured_ratio'].max()):.2f}"
        f" where the prediction tends to {1 / g.kernel**2:.3f}"
        for g in data.groups
    ]
    return (
        "Lines: the paper's prediction 1/N + 1/D_K² (Howard et al. 2017, eq. 5), falling "
        "towards 1/D_K² as N grows; points: the measured ratio of each block. "
        + join(sentences)
        + model_sentence(data.points)
        + "."
    )


def ratio_vs_channels_chart(
    layers: pd.DataFrame | None,
    labels: dict[int, str],
    model_ratios: pd.DataFrame | None = None,
) -> Chart:
    """Measured ratio against N per D_K, over the prediction curves 1/N + 1/D_K² (and the
    latency model's ratio per block when ``model_ratios`` is given)."""
    return compose(
        NAME,
        TITLE,
        channels_data(layers, labels, model_ratios),
        draw_channels,
        channels_reading,
        svg=True,
    )
