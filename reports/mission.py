"""The mission chart: measured separable/standard cost ratios against 1/N + 1/D_K².

Howard et al. (2017, eq. 5) predict that a depthwise-separable layer costs 1/N + 1/D_K² of
the standard convolution it replaces. This module sets that prediction (x) against what was
measured (y), per block from the layer probes (``mobilenet.layers.layer_table``) and per whole
model from the grid cells measured in both variants in the same run, with the identity line.

The points come from a list of ``MissionSeries``: each turns the per-block frame and the
per-model frame into a ratio per row (NaN where it has none). The default list holds the
measured latency, the counted FLOPs, the parameters, the weight bytes and the peak memory of
the measuring process; another series (a device-aware prediction, say) is one more entry in
the list given to ``mission_points`` and ``mission_chart``.

For a whole model, x is the prediction applied layer by layer to the quantity the series
measures: each separable block of the architecture table counts with its standard conv's
MACs (time, FLOPs) or weights (parameters, bytes, memory) × (1/N + 1/D_K²), the stem and
the classifier (the same in both variants) in full. It comes from the architecture table,
not from the ONNX graphs, so the counted series check the generator and the cost model
against the formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from mobilenet.architecture import scaled_layers
from mobilenet.layers import predicted_ratio
from reports.charts import (
    LAYERS_HINT,
    Chart,
    cell_text,
    measured,
    no_chart,
)
from reports.charts.style import finish_axes, render

NAME = "mission"
TITLE = "Mission: measured cost vs the predicted 1/N + 1/D_K²"
MODEL_KEYS: tuple[str, ...] = ("run_id", "alpha", "resolution", "precision", "kernel", "threads")
"""A whole-model pair: the separable and the standard model of one cell in one run."""
POINT_COLUMNS: tuple[str, ...] = (
    "series",
    "level",
    "run_id",
    "item",
    "N",
    "D_K",
    "predicted_ratio",
    "ratio",
)
"""Columns of ``mission_points``: ``level`` is ``block`` or ``model``; ``item`` the block
number or the cell (α/resolution); ``N`` the block's output channels (empty for models)."""

RatioOf = Callable[[pd.DataFrame], pd.Series]
Weight = Literal["macs", "params"]
"""What a whole model's prediction weights the blocks by (``model_predicted_ratio``)."""


@dataclass(frozen=True)
class MissionSeries:
    """One series of the mission chart: a ratio per block row and per model row."""

    key: str
    label: str
    colour: str
    marker: str
    block_ratio: RatioOf
    model_ratio: RatioOf
    weight: Weight = "macs"


def ratio_of(numerator: str, denominator: str) -> RatioOf:
    """``frame[numerator] / frame[denominator]`` as float, NaN where either is missing or
    not positive (a frame without the columns gives all NaN)."""

    def ratio(frame: pd.DataFrame) -> pd.Series:
        if numerator not in frame.columns or denominator not in frame.columns:
            return cast(pd.Series, pd.Series(np.nan, index=frame.index, dtype=float))
        top = pd.to_numeric(frame[numerator], errors="coerce").astype("float64")
        bottom = pd.to_numeric(frame[denominator], errors="coerce").astype("float64")
        valid = (top > 0) & (bottom > 0)
        return cast(pd.Series, (top / bottom).where(valid))

    return ratio


MISSION_SERIES: tuple[MissionSeries, ...] = (
    MissionSeries(
        "latency",
        "latency (median time)",
        "#D55E00",
        "o",
        ratio_of("separable_ms", "standard_ms"),
        ratio_of("p50_ms_sep", "p50_ms_std"),
    ),
    MissionSeries(
        "flops",
        "FLOPs (counted)",
        "#0072B2",
        "s",
        ratio_of("separable_macs", "standard_macs"),
        ratio_of("macs_sep", "macs_std"),
    ),
    MissionSeries(
        "params",
        "memory: parameters",
        "#009E73",
        "D",
        ratio_of("separable_params", "standard_params"),
        ratio_of("params_sep", "params_std"),
        "params",
    ),
    MissionSeries(
        "weight_bytes",
        "memory: weight bytes",
        "#56B4E9",
        "v",
        ratio_of("separable_weight_bytes", "standard_weight_bytes"),
        ratio_of("weight_bytes_sep", "weight_bytes_std"),
        "params",
    ),
    MissionSeries(
        "peak_rss",
        "memory: process peak RSS",
        "#CC79A7",
        "^",
        ratio_of("separable_peak_rss_bytes", "standard_peak_rss_bytes"),
        ratio_of("peak_rss_bytes_sep", "peak_rss_bytes_std"),
        "params",
    ),
)


def model_predicted_ratio(
    alpha: float, resolution: int, kernel: int, weight: Weight = "macs"
) -> float:
    """1/N + 1/D_K² applied to every separable block of the architecture table, weighted by
    the standard conv's MACs or weights; the stem and the classifier count in full."""
    total = 0.0
    predicted = 0.0
    for layer in scaled_layers(alpha, resolution, "standard", kernel):
        amount = float(layer.macs if weight == "macs" else layer.weight_count)
        total += amount
        if layer.role == "standard":
            predicted += amount * predicted_ratio(layer.out_channels, kernel)
        else:
            predicted += amount
    return predicted / total if total > 0 else math.nan


def model_pairs(results: pd.DataFrame) -> pd.DataFrame:
    """Grid cells measured in both variants in the same run: one row per pair, the columns
    of ``charts.measured`` suffixed ``_sep`` and ``_std``, plus ``predicted_ratio_macs`` and
    ``predicted_ratio_params`` (``model_predicted_ratio``)."""
    frame = measured(results)
    frame = frame[frame["alpha"].notna() & frame["resolution"].notna() & (frame["macs"] > 0)]
    sep = frame[frame["variant"] == "separable"]
    std = frame[frame["variant"] == "standard"]
    if sep.empty or std.empty:
        return cast(pd.DataFrame, pd.DataFrame())
    pairs = cast(
        pd.DataFrame,
        sep.merge(std, on=list(MODEL_KEYS), suffixes=("_sep", "_std"), how="inner"),
    )
    if pairs.empty:
        return pairs
    kernels = [3 if math.isnan(k) else int(k) for k in pairs["kernel"]]
    cells = list(zip(pairs["alpha"], pairs["resolution"], kernels, strict=True))
    for weight in ("macs", "params"):
        pairs[f"predicted_ratio_{weight}"] = [
            model_predicted_ratio(float(a), int(r), k, weight) for a, r, k in cells
        ]
    pairs["D_K"] = kernels
    return cast(pd.DataFrame, pairs.reset_index(drop=True))


def _block_rows(layers: pd.DataFrame | None) -> pd.DataFrame:
    if layers is None or layers.empty or "predicted_ratio" not in layers.columns:
        return cast(pd.DataFrame, pd.DataFrame())
    frame = layers.copy()
    frame["predicted_ratio"] = pd.to_numeric(frame["predicted_ratio"], errors="coerce")
    kept: pd.DataFrame = frame[frame["predicted_ratio"] > 0].reset_index(drop=True)
    return kept


def mission_points(
    results: pd.DataFrame,
    layers: pd.DataFrame | None,
    series: Sequence[MissionSeries] = MISSION_SERIES,
) -> pd.DataFrame:
    """Every (series, block or model) point with a ratio: the columns of ``POINT_COLUMNS``."""
    blocks = _block_rows(layers)
    models = model_pairs(results)
    rows: list[dict[str, object]] = []
    for one in series:
        if not blocks.empty:
            for record, ratio in zip(
                blocks.to_dict("records"), one.block_ratio(blocks), strict=True
            ):
                if not (isinstance(ratio, float) and math.isfinite(ratio)):
                    continue
                rows.append(
                    {
                        "series": one.key,
                        "level": "block",
                        "run_id": int(record["run_id"]),
                        "item": str(int(record["block"])),
                        "N": int(record["N"]),
                        "D_K": int(record["D_K"]),
                        "predicted_ratio": float(record["predicted_ratio"]),
                        "ratio": float(ratio),
                    }
                )
        if not models.empty:
            for record, ratio in zip(
                models.to_dict("records"), one.model_ratio(models), strict=True
            ):
                if not (isinstance(ratio, float) and math.isfinite(ratio)):
                    continue
                rows.append(
                    {
                        "series": one.key,
                        "level": "model",
                        "run_id": int(record["run_id"]),
                        "item": cell_text(float(record["alpha"]), float(record["resolution"])),
                        "N": None,
                        "D_K": int(record["D_K"]),
                        "predicted_ratio": float(record[f"predicted_ratio_{one.weight}"]),
                        "ratio": float(ratio),
                    }
                )
    return cast(pd.DataFrame, pd.DataFrame(rows, columns=list(POINT_COLUMNS)))


@dataclass(frozen=True)
class Departure:
    """How one series at one level departs from the prediction: ratio / predicted."""

    series: str
    level: str
    count: int
    above: int
    """Points whose measured ratio is more than 5 % above the prediction."""
    median_factor: float
    low_factor: float
    high_factor: float
    worst_item: str


def departures(points: pd.DataFrame) -> list[Departure]:
    """Per series and level, measured / predicted: median, range, count above, worst."""
    found: list[Departure] = []
    if points.empty:
        return found
    for (key, level), part in points.groupby(["series", "level"], sort=False):
        factor = (part["ratio"] / part["predicted_ratio"]).to_numpy(dtype=float)
        worst = int(np.argmax(np.abs(np.log(factor))))
        found.append(
            Departure(
                series=str(key),
                level=str(level),
                count=len(factor),
                above=int((factor > 1.05).sum()),
                median_factor=float(np.median(factor)),
                low_factor=float(factor.min()),
                high_factor=float(factor.max()),
                worst_item=str(part["item"].iloc[worst]),
            )
        )
    return found


def _median(frame: pd.DataFrame, column: str) -> float:
    if column not in frame.columns:
        return math.nan
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.median()) if len(values) else math.nan


def _why(layers: pd.DataFrame | None, models: pd.DataFrame) -> str:
    """The parts' achieved GFLOP/s against the measured ceilings, and the whole models'."""
    sentences: list[str] = []
    blocks = _block_rows(layers)
    depthwise = _median(blocks, "depthwise_gflop_s") if not blocks.empty else math.nan
    pointwise = _median(blocks, "pointwise_gflop_s") if not blocks.empty else math.nan
    if not (math.isnan(depthwise) or math.isnan(pointwise)):
        text = (
            f"Why: per block the depthwise parts run at {depthwise:.3g} GFLOP/s (median), the "
            f"pointwise parts at {pointwise:.3g} and the standard convs at "
            f"{_median(blocks, 'standard_gflop_s'):.3g}"
        )
        peak, bandwidth = _median(blocks, "peak_gflop_s"), _median(blocks, "bandwidth_gb_s")
        if peak > 0:
            text += f", under a measured GEMM peak of {peak:.3g} GFLOP/s"
            if max(pointwise, _median(blocks, "standard_gflop_s")) > peak:
                text += (
                    " (which the dense convs exceed: numpy's BLAS is slower than "
                    "onnxruntime's kernels here, or the machine was busy when it was measured)"
                )
        intensity = _median(blocks, "depthwise_intensity")
        if bandwidth > 0 and intensity > 0:
            text += (
                f"; at {intensity:.2g} FLOP/byte a depthwise conv is bound by the "
                f"{bandwidth:.3g} GB/s copy bandwidth to {bandwidth * intensity:.3g} GFLOP/s"
            )
        sentences.append(
            text + ": the 1/D_K² term is cheap in FLOPs but runs at a fraction of the dense "
            "convs' rate, so a block saves less time than FLOPs"
        )
    if not models.empty:
        sep = 2e-6 * models["macs_sep"] / models["p50_ms_sep"]
        std = 2e-6 * models["macs_std"] / models["p50_ms_std"]
        weights = models["params_std"] / models["params_sep"]
        low, high = f"{float(weights.min()):.0f}", f"{float(weights.max()):.0f}"
        sentences.append(
            f"Whole models run at {float(sep.median()):.3g} GFLOP/s separable and "
            f"{float(std.median()):.3g} GFLOP/s standard (median over the cells); a ratio "
            f"below the line means the standard model, whose weights are "
            f"{low if low == high else f'{low}–{high}'}× larger, runs further below its peak"
        )
    sentences.append(
        "The process's peak RSS is mostly the runtime itself, the same in both variants, "
        "so it lies far above the line"
    )
    return ". ".join(sentences) + "."


ON_LINE = 0.10
"""A series whose every point is within this fraction of the prediction is 'on the line'."""


def _sentence(one: MissionSeries, found: Departure) -> str:
    where = "per block" if found.level == "block" else "whole models"
    worst = f"block {found.worst_item}" if found.level == "block" else found.worst_item
    return (
        f"{one.label}, {where}: {found.median_factor:.2f}× the prediction (median; "
        f"{found.low_factor:.2f}–{found.high_factor:.2f}×), above it in {found.above} of "
        f"{found.count}, furthest at {worst}"
    )


def _reading(points: pd.DataFrame, series: Sequence[MissionSeries], why: str) -> str:
    by_key = {one.key: one for one in series}
    found = departures(points)
    close = [d for d in found if max(abs(d.low_factor - 1), abs(d.high_factor - 1)) <= ON_LINE]
    close_keys = {d.series for d in close}
    on_line = [
        by_key[k].label
        for k in dict.fromkeys(d.series for d in found)
        if k in close_keys and all(d in close for d in found if d.series == k)
    ]
    off = [d for d in found if by_key[d.series].label not in on_line]
    levels = set(points["level"])
    origin = []
    if "block" in levels:
        origin.append("each separable block timed as single-layer probes (mnbench layers)")
    if "model" in levels:
        origin.append("each grid cell measured in both variants in the same run")
    text = (
        "Points on the dashed line cost exactly what 1/N + 1/D_K² predicts (Howard et al. "
        "2017, eq. 5); above it the separable form saves less than predicted, below it more. "
        "From " + " and ".join(origin) + ". "
    )
    if on_line:
        text += (
            f"On the line within ±{100 * ON_LINE:.0f} % everywhere: " + ", ".join(on_line) + ". "
        )
    if off:
        text += "; ".join(_sentence(by_key[d.series], d) for d in off) + ". "
    return text + why


def mission_chart(
    results: pd.DataFrame,
    layers: pd.DataFrame | None,
    series: Sequence[MissionSeries] = MISSION_SERIES,
) -> Chart:
    """The predicted ratio on x, the measured ratios of every series on y, y = x drawn."""
    points = mission_points(results, layers, series)
    if points.empty:
        return no_chart(
            NAME,
            TITLE,
            "the selected runs hold neither layer probes nor a grid cell measured in both "
            "the separable and the standard variant",
            f"{LAYERS_HINT}; mnbench run --variant separable standard",
        )
    fig = Figure(figsize=(9.0, 6.6), layout="constrained")
    ax = fig.subplots()
    for one in series:
        labelled = False
        for level, size, fill in (("block", 34, True), ("model", 120, False)):
            part = points[(points["series"] == one.key) & (points["level"] == level)]
            if part.empty:
                continue
            ax.scatter(
                part["predicted_ratio"],
                part["ratio"],
                marker=one.marker,
                s=size,
                facecolors=one.colour if fill else "none",
                edgecolors=one.colour if not fill else "white",
                linewidths=1.6 if not fill else 0.5,
                zorder=3,
                label=None if labelled else one.label,
            )
            labelled = True
    for level, fill in (("block", True), ("model", False)):
        if (points["level"] == level).any():
            ax.scatter(
                [],
                [],
                marker="o",
                s=34 if fill else 120,
                facecolors="#666666" if fill else "none",
                edgecolors="#666666",
                label="filled: per block (layer probes)" if fill else "hollow: whole model",
            )
    x_values = points["predicted_ratio"].to_numpy(dtype=float)
    y_values = points["ratio"].to_numpy(dtype=float)
    x_low, x_high = float(x_values.min()) / 1.25, float(x_values.max()) * 1.25
    y_low = min(float(y_values.min()), x_low) / 1.3
    y_high = max(float(y_values.max()), x_high) * 1.3
    line = np.geomspace(min(x_low, y_low), max(x_high, y_high), 50)
    ax.plot(
        line,
        line,
        color="#000000",
        linestyle="--",
        linewidth=1.0,
        label="y = x: cost follows the prediction",
    )
    finish_axes(
        ax,
        "predicted ratio 1/N + 1/D_K² (separable / standard, log scale)",
        "measured ratio separable / standard (log scale)",
        "Does the cost follow 1/N + 1/D_K²?",
        legend="lower right",
        legend_size=8,
    )
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    png, svg = render(fig, svg=True)
    reading = _reading(points, series, _why(layers, model_pairs(results)))
    return Chart(NAME, TITLE, reading, points, png=png, svg=svg)
