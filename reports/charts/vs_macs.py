"""Chart 2: latency against MACs on log–log axes, the fitted power-law slope against the
ideal slope 1 (latency proportional to MACs)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.charts.chart import Chart, Missing, cell_text, compose, join
from reports.charts.series import (
    Row,
    loglog_fit,
    measured,
    row_at,
    rows_of,
    series_keys,
    series_name,
    sorted_keys,
    threads_vary,
)
from reports.charts.style import OTHER_MARKER, VARIANT_MARKERS, colour, finish_axes

NAME = "latency_vs_macs"
TITLE = "Latency vs MACs (log–log)"
TOO_FEW = Missing(
    "fewer than two models with both MACs and a median "
    "latency; measure at least two models of the grid",
    "mnbench run",
)


@dataclass(frozen=True)
class Point:
    macs: float
    p50_ms: float
    variant: str


@dataclass(frozen=True)
class Label:
    """A point's cell label, drawn where it does not crowd an earlier one."""

    text: str
    macs: float
    p50_ms: float


@dataclass(frozen=True)
class MacsSeries:
    name: str
    points: tuple[Point, ...]
    fit: tuple[float, float, float] | None
    """(slope, intercept of log10 ms, r) of log latency on log MACs; None below 2 MACs."""
    smallest: Point
    largest: Point
    labels: tuple[Label, ...]


@dataclass(frozen=True)
class LatencyVsMacs:
    series: tuple[MacsSeries, ...]
    variants: tuple[str, ...]
    """The known variants present (one legend entry each)."""
    rows: pd.DataFrame


def _point(row: Mapping[Any, Any]) -> Point:
    return Point(float(row["macs"]), float(row["p50_ms"]), str(row["variant"]))


def vs_macs_data(results: pd.DataFrame, labels: dict[int, str]) -> LatencyVsMacs | Missing:
    frame = measured(results)
    frame = frame[frame["macs"] > 0].reset_index(drop=True)
    if frame.empty or frame["macs"].nunique() < 2:
        return TOO_FEW
    by_threads = threads_vary(frame)
    by_variant = frame["variant"].nunique() > 1
    frame["series_key"] = series_keys(frame, by_threads, by_variant)
    show_precision = frame["precision"].nunique() > 1
    rows: list[dict[str, object]] = []
    series: list[MacsSeries] = []
    labelled: set[str] = set()
    placed: list[tuple[float, float]] = []
    for key in sorted_keys(frame["series_key"]):
        part = rows_of(frame, key)
        name = series_name(labels, key, show_precision)
        fit = loglog_fit(part["macs"].tolist(), part["p50_ms"].tolist())
        spots: list[Label] = []
        for record in part.to_dict("records"):
            row = Row(record)
            rows.append(
                {
                    "run_id": int(row.run_id),
                    "series": name,
                    "name": row.name,
                    "variant": row.variant,
                    "precision": row.precision,
                    "threads": row.threads,
                    "macs": float(row.macs),
                    "p50_ms": float(row.p50_ms),
                    "fit_slope": fit[0] if fit else math.nan,
                    "fit_intercept_log10_ms": fit[1] if fit else math.nan,
                    "fit_r": fit[2] if fit else math.nan,
                }
            )
            text = (
                cell_text(row.alpha, row.resolution)
                if not math.isnan(row.alpha) and not math.isnan(row.resolution)
                else str(row.name)
            )
            if row.variant == "standard":
                text += " std"
            spot = (math.log10(float(row.macs)), math.log10(float(row.p50_ms)))
            crowded = any(abs(spot[0] - u) < 0.09 and abs(spot[1] - v) < 0.06 for u, v in placed)
            if text not in labelled and not crowded:
                labelled.add(text)
                placed.append(spot)
                spots.append(Label(text, float(row.macs), float(row.p50_ms)))
        series.append(
            MacsSeries(
                name=name,
                points=tuple(_point(r) for r in part.to_dict("records")),
                fit=fit,
                smallest=_point(row_at(part, "macs", largest=False)),
                largest=_point(row_at(part, "macs", largest=True)),
                labels=tuple(spots),
            )
        )
    variants = tuple(v for v in VARIANT_MARKERS if (frame["variant"] == v).any())
    return LatencyVsMacs(tuple(series), variants, pd.DataFrame(rows))


def draw_vs_macs(data: LatencyVsMacs) -> Figure:
    fig = Figure(figsize=(9.5, 6.0), layout="constrained")
    ax = fig.subplots()
    for index, line in enumerate(data.series):
        col = colour(index)
        x_part = np.array([p.macs for p in line.points]) / 1e6
        x_line = np.geomspace(float(x_part.min()) / 1.1, float(x_part.max()) * 1.1, 20)
        legend = line.name if line.fit is None else f"{line.name}: slope {line.fit[0]:.2f}"
        for variant in sorted({p.variant for p in line.points}):
            points = [p for p in line.points if p.variant == variant]
            ax.scatter(
                pd.Series([p.macs for p in points], dtype=float) / 1e6,
                pd.Series([p.p50_ms for p in points], dtype=float),
                color=col,
                s=36,
                zorder=3,
                marker=VARIANT_MARKERS.get(variant, OTHER_MARKER),
                edgecolors="white",
                linewidths=0.5,
            )
        ax.plot([], [], color=col, marker="o", label=legend)
        if line.fit is not None:
            slope, intercept, _ = line.fit
            ax.plot(
                x_line,
                10 ** (intercept + slope * np.log10(x_line * 1e6)),
                color=col,
                linewidth=1.4,
                alpha=0.9,
            )
        x_big, y_big = line.largest.macs / 1e6, line.largest.p50_ms
        ax.plot(x_line, y_big * x_line / x_big, color=col, linestyle=":", linewidth=1.2, alpha=0.8)
        for label in line.labels:
            ax.annotate(
                label.text,
                (label.macs / 1e6, label.p50_ms),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color="#333333",
            )
    ax.plot(
        [],
        [],
        color="#666666",
        linestyle=":",
        label="latency ∝ MACs (slope 1, through each series' largest model)",
    )
    for variant in data.variants:
        ax.scatter(
            [], [], marker=VARIANT_MARKERS[variant], color="#666666", label=f"{variant} variant"
        )
    finish_axes(
        ax,
        "multiply-accumulates per inference (millions, log scale)",
        "median latency (ms, log scale)",
        "Latency vs MACs: fitted power law vs the ideal slope 1",
    )
    return fig


def series_sentence(line: MacsSeries) -> str | None:
    """The slope of one series and its µs per million MACs at both ends (None without a fit)."""
    if line.fit is None:
        return None
    slope, _, r = line.fit
    us_small = 1000 * line.smallest.p50_ms / (line.smallest.macs / 1e6)
    us_big = 1000 * line.largest.p50_ms / (line.largest.macs / 1e6)
    return (
        f"{line.name}: slope {slope:.2f}"
        + (f" (r = {r:.3f})" if not math.isnan(r) else "")
        + f", so 10× the MACs costs {10**slope:.1f}× the time; "
        f"{us_small:.0f} µs per million MACs at the smallest model vs "
        f"{us_big:.0f} at the largest"
    )


def vs_macs_reading(data: LatencyVsMacs) -> str:
    sentences = [s for s in map(series_sentence, data.series) if s is not None]
    reading = (
        "Lines are least-squares fits of log latency on log MACs; dotted lines have "
        "slope 1 (latency proportional to MACs) through each series' largest model. "
        "A slope below 1 means small models pay a fixed per-inference overhead and run "
        "further from peak throughput; above 1 means large models fall out of cache. "
    )
    return reading + (
        (join(sentences) + ".")
        if sentences
        else "No series has two distinct MACs values, so no slope is fitted."
    )


def latency_vs_macs(results: pd.DataFrame, labels: dict[int, str]) -> Chart:
    """Log–log latency against MACs with the fitted power-law slope and the slope-1 line."""
    return compose(
        NAME, TITLE, vs_macs_data(results, labels), draw_vs_macs, vs_macs_reading, svg=True
    )
