"""Chart 3: median latency against ImageNet top-1 accuracy with each series' Pareto
frontier (the most accurate cell for a latency budget)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from reports.accuracy import alpha_key
from reports.charts.chart import Chart, Missing, cell_text, compose, join
from reports.charts.series import (
    measured,
    rows_of,
    series_keys,
    series_name,
    sorted_keys,
    threads_vary,
)
from reports.charts.style import colour, finish_axes

NAME = "latency_accuracy"
TITLE = "Latency vs ImageNet top-1 accuracy"
NO_SEPARABLE = Missing(
    "no separable (MobileNet) grid model has a median "
    "latency; the standard variant has no published accuracy",
    "mnbench run --variant separable",
)


def pareto_front(latency_ms: Sequence[float], top1: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats (lower-or-equal latency, higher accuracy),
    in order of increasing latency."""
    order = sorted(range(len(latency_ms)), key=lambda i: (latency_ms[i], -top1[i]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if top1[i] > best:
            front.append(i)
            best = top1[i]
    return front


@dataclass(frozen=True)
class AccuracySeries:
    name: str
    cells: tuple[str, ...]
    latency_ms: tuple[float, ...]
    top1: tuple[float, ...]
    front: tuple[int, ...]
    """Indices of the Pareto-optimal cells, fastest first."""


@dataclass(frozen=True)
class LatencyAccuracy:
    series: tuple[AccuracySeries, ...]
    origin: str
    """Where the accuracy figures come from."""
    rows: pd.DataFrame


def accuracy_data(
    results: pd.DataFrame, labels: dict[int, str], accuracy: pd.DataFrame, accuracy_origin: str = ""
) -> LatencyAccuracy | Missing:
    frame = measured(results)
    eligible = frame[
        (frame["variant"] == "separable")
        & frame["alpha"].notna()
        & frame["resolution"].notna()
        & (frame["kernel"].isna() | (frame["kernel"] == 3))
    ].copy()
    if eligible.empty:
        return NO_SEPARABLE
    table = accuracy.copy()
    table["akey"] = [alpha_key(a) for a in table["alpha"]]
    table["rkey"] = [int(r) for r in table["resolution"]]
    eligible["akey"] = [alpha_key(a) for a in eligible["alpha"]]
    eligible["rkey"] = [int(r) for r in eligible["resolution"]]
    joined = eligible.merge(
        table[["akey", "rkey", "precision", "top1", "source"]],
        on=["akey", "rkey", "precision"],
        how="inner",
    )
    if joined.empty:
        precisions = ", ".join(sorted(set(eligible["precision"])))
        return Missing(
            f"no accuracy for the measured cells ({precisions}); the "
            "reference table covers fp32 and int8 at α 1.0/0.75/0.5/0.25 × 224/192/"
            "160/128; give your own as a CSV with columns "
            "alpha,resolution,precision,top1",
            "mnbench report --accuracy YOUR.csv",
        )
    joined["series_key"] = series_keys(joined, threads_vary(joined))
    show_precision = joined["precision"].nunique() > 1
    rows: list[dict[str, object]] = []
    series: list[AccuracySeries] = []
    for key in sorted_keys(joined["series_key"]):
        part = rows_of(joined, key).reset_index(drop=True)
        name = series_name(labels, key, show_precision)
        lat = [float(v) for v in part["p50_ms"]]
        acc = [float(v) for v in part["top1"]]
        front = pareto_front(lat, acc)
        for i in range(len(part)):
            rows.append(
                {
                    "run_id": key[0],
                    "series": name,
                    "name": part.at[i, "name"],
                    "alpha": float(part.at[i, "alpha"]),
                    "resolution": int(part.at[i, "resolution"]),
                    "precision": part.at[i, "precision"],
                    "threads": part.at[i, "threads"],
                    "p50_ms": lat[i],
                    "top1": acc[i],
                    "accuracy_source": part.at[i, "source"],
                    "pareto": i in front,
                }
            )
        cells = tuple(
            cell_text(part.at[i, "alpha"], part.at[i, "resolution"]) for i in range(len(part))
        )
        series.append(AccuracySeries(name, cells, tuple(lat), tuple(acc), tuple(front)))
    sources = sorted({str(s) for s in joined["source"]})
    origin = accuracy_origin or ("; ".join(sources[:1]) + ("…" if len(sources) > 1 else ""))
    return LatencyAccuracy(tuple(series), origin, pd.DataFrame(rows))


def draw_accuracy(data: LatencyAccuracy) -> Figure:
    fig = Figure(figsize=(9.5, 6.0), layout="constrained")
    ax = fig.subplots()
    for index, line in enumerate(data.series):
        col = colour(index)
        lat, acc, front = line.latency_ms, line.top1, line.front
        others = [i for i in range(len(lat)) if i not in front]
        ax.scatter(
            [lat[i] for i in others],
            [acc[i] for i in others],
            s=30,
            facecolors="none",
            edgecolors=col,
            linewidths=1.0,
            zorder=2,
        )
        ax.plot(
            [lat[i] for i in front],
            [acc[i] for i in front],
            color=col,
            marker="o",
            markersize=6,
            linewidth=1.6,
            drawstyle="steps-post",
            zorder=3,
            label=f"{line.name}: Pareto frontier",
        )
        for i in front:
            ax.annotate(
                line.cells[i],
                (lat[i], acc[i]),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=8,
                color=col,
                fontweight="bold",
            )
    ax.scatter(
        [],
        [],
        s=30,
        facecolors="none",
        edgecolors="#666666",
        label="dominated (slower and no more accurate than a frontier cell)",
    )
    finish_axes(
        ax,
        "median latency (ms, log scale)",
        "ImageNet top-1 accuracy (%)",
        "Latency vs accuracy: the Pareto frontier, labelled α/resolution",
        y_log=False,
        legend="lower right",
    )
    return fig


def series_sentence(line: AccuracySeries) -> str:
    """'series: 3 of 16 cells are Pareto-optimal — cells (from … to …)'."""
    lat, acc, front = line.latency_ms, line.top1, line.front
    picks = ", ".join(line.cells[i] for i in front)
    fastest, best = front[0], front[-1]
    picks += (
        f" (from {lat[fastest]:.3g} ms at {acc[fastest]:.1f} % to {lat[best]:.3g} ms "
        f"at {acc[best]:.1f} %)"
    )
    return f"{line.name}: {len(front)} of {len(lat)} cells are Pareto-optimal — {picks}"


def accuracy_reading(data: LatencyAccuracy) -> str:
    return (
        "Filled points joined by a step line are the Pareto frontier: for a latency "
        "budget, pick the rightmost frontier point under it. "
        + join([series_sentence(s) for s in data.series])
        + f". Accuracy: {data.origin}; the standard-convolution variant has no published "
        "accuracy per cell and is left out."
    )


def latency_accuracy(
    results: pd.DataFrame, labels: dict[int, str], accuracy: pd.DataFrame, accuracy_origin: str = ""
) -> Chart:
    """Median latency against ImageNet top-1 with each series' Pareto frontier."""
    return compose(
        NAME,
        TITLE,
        accuracy_data(results, labels, accuracy, accuracy_origin),
        draw_accuracy,
        accuracy_reading,
        svg=True,
    )
