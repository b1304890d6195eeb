"""Chart 5: the measured separable/standard latency ratio beside the MAC ratio, per grid cell
and run (the whole-model test of Howard et al. 2017, eq. 5)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.charts.chart import Chart, Missing, cell_text, compose, join
from reports.charts.series import (
    measured,
    rows_of,
    series_keys,
    series_name,
    sorted_keys,
    threads_vary,
)
from reports.charts.style import colour

NAME = "prediction"
TITLE = "Separable vs standard: measured vs MAC ratio"
NO_PAIRS = Missing(
    "no α × resolution cell was measured in both the separable "
    "and the standard variant in the same run",
    "mnbench run --variant separable standard",
)
PAIR_KEYS: list[str] = ["run_id", "alpha", "resolution", "precision", "kernel", "threads"]
CSV_COLUMNS: list[str] = [
    *PAIR_KEYS,
    "name_sep",
    "name_std",
    "p50_ms_sep",
    "p50_ms_std",
    "macs_sep",
    "macs_std",
    "latency_ratio",
    "mac_ratio",
]


@dataclass(frozen=True)
class RatioSeries:
    name: str
    latency_ratio: tuple[float, ...]
    """Per cell of ``SeparableRatio.cells``; NaN where this series did not pair it."""
    measured: tuple[float, ...]
    """The series' latency ratios, one per pair."""
    macs: tuple[float, ...]
    """The series' MAC ratios, one per pair."""


@dataclass(frozen=True)
class SeparableRatio:
    cells: tuple[str, ...]
    mac_ratio: tuple[float, ...]
    """Per cell, the mean MAC ratio over runs."""
    series: tuple[RatioSeries, ...]
    kernels: tuple[int, ...]
    highest: float
    """The largest ratio shown (measured or MACs)."""
    rows: pd.DataFrame


def separable_ratio_data(results: pd.DataFrame, labels: dict[int, str]) -> SeparableRatio | Missing:
    frame = measured(results)
    frame = frame[frame["alpha"].notna() & frame["resolution"].notna() & (frame["macs"] > 0)]
    sep = frame[frame["variant"] == "separable"]
    std = frame[frame["variant"] == "standard"]
    pairs = (
        sep.merge(std, on=PAIR_KEYS, suffixes=("_sep", "_std"), how="inner")
        if not (sep.empty or std.empty)
        else pd.DataFrame()
    )
    if pairs.empty:
        return NO_PAIRS
    pairs = pairs.assign(
        latency_ratio=pairs["p50_ms_sep"] / pairs["p50_ms_std"],
        mac_ratio=pairs["macs_sep"] / pairs["macs_std"],
    )
    pairs["variant"] = ""
    pairs["series_key"] = series_keys(pairs, threads_vary(pairs))
    show_precision = pairs["precision"].nunique() > 1
    cells = sorted(
        set(zip(pairs["alpha"], pairs["resolution"], strict=True)), key=lambda c: (-c[0], -c[1])
    )
    mac_by_cell = pairs.groupby(["alpha", "resolution"])["mac_ratio"].mean()
    series: list[RatioSeries] = []
    for key in sorted_keys(pairs["series_key"]):
        part = rows_of(pairs, key)
        by_cell = {
            (float(a), float(r)): float(v)
            for a, r, v in zip(
                part["alpha"], part["resolution"], part["latency_ratio"], strict=True
            )
        }
        series.append(
            RatioSeries(
                name=series_name(labels, key, show_precision),
                latency_ratio=tuple(
                    by_cell.get((float(c[0]), float(c[1])), math.nan) for c in cells
                ),
                measured=tuple(part["latency_ratio"].to_numpy(dtype=float).tolist()),
                macs=tuple(part["mac_ratio"].to_numpy(dtype=float).tolist()),
            )
        )
    highest = max(
        float(np.nanmax(pairs["latency_ratio"].to_numpy(dtype=float))),
        float(np.nanmax(pairs["mac_ratio"].to_numpy(dtype=float))),
    )
    return SeparableRatio(
        cells=tuple(cell_text(a, r) for a, r in cells),
        mac_ratio=tuple(float(mac_by_cell.loc[c]) for c in cells),
        series=tuple(series),
        kernels=tuple(sorted({3 if math.isnan(k) else int(k) for k in pairs["kernel"]})),
        highest=highest,
        rows=pairs[CSV_COLUMNS].reset_index(drop=True),
    )


def draw_separable_ratio(data: SeparableRatio) -> Figure:
    n_bars = len(data.series) + 1
    width = 0.8 / n_bars
    cells = data.cells
    fig = Figure(
        figsize=(min(13.0, max(8.0, 0.35 * len(cells) * n_bars + 3.0)), 5.6), layout="constrained"
    )
    ax = fig.subplots()
    x = np.arange(len(cells))
    annotate = len(cells) * n_bars <= 48
    bars = ax.bar(
        x - 0.4 + width / 2,
        list(data.mac_ratio),
        width,
        color="#999999",
        hatch="//",
        edgecolor="white",
        label="MAC ratio (separable / standard)",
    )
    if annotate:
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    for index, line in enumerate(data.series):
        bars = ax.bar(
            x - 0.4 + width * (index + 1.5),
            list(line.latency_ratio),
            width,
            color=colour(index),
            label=f"measured latency ratio: {line.name}",
        )
        if annotate:
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    for kernel in data.kernels:
        limit = 1.0 / kernel**2
        ax.axhline(
            limit,
            color="#000000",
            linestyle="--",
            linewidth=1.0,
            label=f"1/D_K² = {limit:.3f}: the per-layer 1/N + 1/D_K² as N grows (D_K={kernel})",
        )
    ax.set_xticks(x, list(cells), rotation=45 if len(cells) > 8 else 0)
    ax.set_xlabel("grid cell (α/resolution)")
    ax.set_ylabel("separable / standard (ratio, lower = cheaper)")
    ax.set_title("Depthwise-separable vs standard convolution: measured latency vs MACs")
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(0, data.highest * 1.45)  # room for the legend above the bars
    return fig


def series_sentence(line: RatioSeries) -> str:
    lat = np.asarray(line.measured, dtype=float)
    mac = np.asarray(line.macs, dtype=float)
    return (
        f"{line.name}: measured {lat.min():.2f}–{lat.max():.2f} (median "
        f"{float(np.median(lat)):.2f}, a {1 / float(np.median(lat)):.1f}× "
        f"speed-up) where MACs predict {mac.min():.2f}–{mac.max():.2f} "
        f"({1 / float(np.median(mac)):.1f}×)"
    )


def separable_ratio_reading(data: SeparableRatio) -> str:
    return (
        "For each cell measured in both variants in the same run, the bars set the "
        "measured latency ratio separable/standard beside the MAC ratio. "
        + join([series_sentence(s) for s in data.series])
        + ". The paper's prediction 1/N + 1/D_K² applies layer by "
        "layer (N output channels, D_K the kernel); the whole-model MAC ratio sits "
        "above it because the stem and the fully connected layer are the same in both "
        "variants. A measured ratio above the MAC ratio means depthwise convolutions run "
        "at lower MAC throughput than dense ones."
    )


def prediction_chart(results: pd.DataFrame, labels: dict[int, str]) -> Chart:
    """Measured separable/standard latency ratio beside the MAC ratio, per cell and run."""
    return compose(
        NAME,
        TITLE,
        separable_ratio_data(results, labels),
        draw_separable_ratio,
        separable_ratio_reading,
        svg=False,
    )
