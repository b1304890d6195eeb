"""Chart 4: process peak RSS (after load, overall) and the model's bytes (file, weights,
peak activations) against its parameter count."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.charts.chart import Chart, Missing, compose, join
from reports.charts.series import (
    TEXT_COLUMNS,
    row_at,
    rows_of,
    series_keys,
    series_name,
    sorted_keys,
    threads_vary,
    typed,
)
from reports.charts.style import (
    OTHER_MARKER,
    VARIANT_MARKERS,
    colour,
    finish_axes,
)

NAME = "memory"
TITLE = "Memory vs parameters"
MIB = 1024.0 * 1024.0
MODEL_SIZES: dict[str, str] = {
    "file_bytes": "model file",
    "weight_bytes": "weights",
    "peak_activation_bytes": "peak activations",
}
"""The cost model's byte counts, drawn on the right, with their legend text."""
CSV_COLUMNS: tuple[str, ...] = (
    "run_id",
    "name",
    "variant",
    "precision",
    "threads",
    "params",
    "peak_rss_load_bytes",
    "peak_rss_bytes",
    "file_bytes",
    "weight_bytes",
    "peak_activation_bytes",
)
NOTHING = Missing(
    "no measured model has a parameter count together with "
    "peak RSS or model sizes; a sweep records both",
    "mnbench run",
)


@dataclass(frozen=True)
class Largest:
    """The model holding the largest value of a byte count."""

    bytes: float
    model: str


@dataclass(frozen=True)
class RssSeries:
    name: str
    points: pd.DataFrame
    """params, peak_rss_bytes, peak_rss_load_bytes, variant of each measurement."""
    fit: tuple[float, float] | None
    """(constant MiB, MiB per weight MiB): least squares of peak RSS on weight bytes."""
    largest: Largest | None
    """The largest peak RSS, when there is no fit."""


@dataclass(frozen=True)
class Memory:
    rss: tuple[RssSeries, ...]
    models: pd.DataFrame
    """One row per distinct model with a size: params, the ``MODEL_SIZES`` and variant."""
    largest_activation: Largest | None
    rows: pd.DataFrame


def memory_data(results: pd.DataFrame, labels: dict[int, str]) -> Memory | Missing:
    frame = typed(results, text=(*TEXT_COLUMNS, "sha256"))
    frame = frame[(frame["params"] > 0) & (frame["status"] != "failed")]
    rss = frame[(frame["peak_rss_bytes"] > 0) | (frame["peak_rss_load_bytes"] > 0)]
    sizes = frame[frame[list(MODEL_SIZES)].gt(0).any(axis=1)]
    if rss.empty and sizes.empty:
        return NOTHING
    series: list[RssSeries] = []
    if not rss.empty:
        rss = rss.assign(series_key=series_keys(rss, threads_vary(rss)))
        show_precision = rss["precision"].nunique() > 1
        for key in sorted_keys(rss["series_key"]):
            part = rows_of(rss, key)
            fitted = part[(part["peak_rss_bytes"] > 0) & (part["weight_bytes"] > 0)]
            fit: tuple[float, float] | None = None
            largest: Largest | None = None
            if fitted["weight_bytes"].nunique() >= 2:
                slope, base = np.polyfit(
                    fitted["weight_bytes"].to_numpy(dtype=float) / MIB,
                    fitted["peak_rss_bytes"].to_numpy(dtype=float) / MIB,
                    1,
                )
                fit = (float(base), float(slope))
            elif (part["peak_rss_bytes"] > 0).any():
                top = row_at(part, "peak_rss_bytes", largest=True)
                largest = Largest(float(top["peak_rss_bytes"]), str(top["name"]))
            points = part[["params", "peak_rss_bytes", "peak_rss_load_bytes", "variant"]]
            series.append(RssSeries(series_name(labels, key, show_precision), points, fit, largest))
    models = sizes.drop_duplicates(subset=["name", "sha256"])
    acts = models[models["peak_activation_bytes"] > 0]
    activation = None
    if not acts.empty:
        top = row_at(acts, "peak_activation_bytes", largest=True)
        activation = Largest(float(top["peak_activation_bytes"]), str(top["name"]))
    return Memory(
        rss=tuple(series),
        models=models[["params", *MODEL_SIZES, "variant"]],
        largest_activation=activation,
        rows=frame[list(CSV_COLUMNS)].reset_index(drop=True),
    )


def _draw_rss(ax: Axes, data: Memory) -> None:
    if not data.rss:
        ax.text(0.5, 0.5, "no peak RSS recorded", ha="center", va="center", transform=ax.transAxes)
        return
    for index, line in enumerate(data.rss):
        col = colour(index)
        for variant, vpart in line.points.groupby("variant", sort=True):
            marker = VARIANT_MARKERS.get(str(variant), OTHER_MARKER)
            overall = vpart[vpart["peak_rss_bytes"] > 0]
            load = vpart[vpart["peak_rss_load_bytes"] > 0]
            ax.scatter(
                overall["params"] / 1e6,
                overall["peak_rss_bytes"] / MIB,
                color=col,
                marker=marker,
                s=36,
                zorder=3,
            )
            ax.scatter(
                load["params"] / 1e6,
                load["peak_rss_load_bytes"] / MIB,
                facecolors="none",
                edgecolors=col,
                marker=marker,
                s=36,
                zorder=3,
            )
        ax.plot([], [], color=col, marker="o", linestyle="none", label=line.name)
    ax.scatter([], [], color="#666666", marker="o", label="peak RSS overall (filled)")
    ax.scatter(
        [],
        [],
        facecolors="none",
        edgecolors="#666666",
        marker="o",
        label="peak RSS after load (hollow)",
    )


def _draw_sizes(ax: Axes, models: pd.DataFrame) -> None:
    if models.empty:
        ax.text(
            0.5, 0.5, "no model sizes recorded", ha="center", va="center", transform=ax.transAxes
        )
        return
    for index, (metric, text) in enumerate(MODEL_SIZES.items()):
        has = models[models[metric] > 0]
        hollow = metric == "file_bytes"  # drawn around the weights it nearly equals
        for variant, vpart in has.groupby("variant", sort=True):
            ax.scatter(
                vpart["params"] / 1e6,
                vpart[metric] / MIB,
                facecolors="none" if hollow else colour(index),
                edgecolors=colour(index),
                linewidths=1.4,
                marker=VARIANT_MARKERS.get(str(variant), OTHER_MARKER),
                s=90 if hollow else 30,
                zorder=3,
            )
        if not has.empty:
            ax.scatter(
                [],
                [],
                facecolors="none" if hollow else colour(index),
                edgecolors=colour(index),
                marker="o",
                label=text + (" (hollow)" if hollow else ""),
            )
    for variant, marker in VARIANT_MARKERS.items():
        if (models["variant"] == variant).any():
            ax.scatter([], [], marker=marker, color="#666666", label=f"{variant} variant")


def draw_memory(data: Memory) -> Figure:
    fig = Figure(figsize=(12.5, 5.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    _draw_rss(left, data)
    finish_axes(
        left,
        "parameters (millions, log scale)",
        "process peak RSS (MiB, log scale)",
        "Process memory (per run)",
        log=bool(data.rss),
        legend="upper left" if data.rss else None,
    )
    _draw_sizes(right, data.models)
    finish_axes(
        right,
        "parameters (millions, log scale)",
        "bytes (MiB, log scale)",
        "Model file, weights and peak activations",
        log=not data.models.empty,
        legend=None if data.models.empty else "upper left",
    )
    return fig


def memory_sentences(data: Memory) -> list[str]:
    sentences: list[str] = []
    for line in data.rss:
        if line.fit is not None:
            base, slope = line.fit
            sentences.append(
                f"{line.name}: peak RSS ≈ {base:.0f} MiB + {slope:.2f} × weight "
                "MiB (least squares), the constant being the runtime and "
                "interpreter, the slope the copies of the weights it keeps"
            )
        elif line.largest is not None:
            sentences.append(
                f"{line.name}: largest peak RSS {line.largest.bytes / MIB:.0f} MiB "
                f"({line.largest.model})"
            )
    if data.largest_activation is not None:
        top = data.largest_activation
        sentences.append(f"the largest peak activation is {top.bytes / MIB:.1f} MiB ({top.model})")
    return sentences


def memory_reading(data: Memory) -> str:
    reading = (
        "Left: peak resident memory of the measuring process after the session is "
        "created (hollow) and at the end (filled), circles for the separable and squares "
        "for the standard variant. Right: the model's file size, weight bytes and the "
        "largest live activations from the cost model. "
    )
    sentences = memory_sentences(data)
    return reading + ((join(sentences) + ".") if sentences else "")


def memory_chart(results: pd.DataFrame, labels: dict[int, str]) -> Chart:
    """Peak RSS (after load, overall) and model bytes (file, weights, activations) vs params."""
    return compose(
        NAME, TITLE, memory_data(results, labels), draw_memory, memory_reading, svg=False
    )
