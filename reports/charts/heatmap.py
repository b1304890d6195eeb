"""Chart 1: median latency over α × resolution, one panel per run and configuration."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from reports.charts.chart import (
    Chart,
    Missing,
    alpha_text,
    as_float,
    cell_text,
    compose,
    config_text,
    join,
)
from reports.charts.series import Row, measured, row_at

NAME = "latency_heatmap"
TITLE = "Latency heatmap (α × resolution)"
MAX_PANELS = 12
NO_GRID = Missing(
    "no grid model (α × resolution) has a median latency in "
    "the selected runs; measure the α × resolution grid",
    "mnbench run",
)


@dataclass(frozen=True)
class Cell:
    """One measured cell of a panel."""

    cell: str
    p50_ms: float
    macs: float


@dataclass(frozen=True)
class Panel:
    """One run × configuration: the latency matrix and its fastest and slowest cells."""

    series: str
    config: str
    alphas: tuple[float, ...]
    """Rows, largest first."""
    resolutions: tuple[int, ...]
    """Columns, smallest first."""
    p50_ms: tuple[tuple[float, ...], ...]
    """Median latency per (α, resolution); NaN where the cell was not measured."""
    fastest: Cell
    slowest: Cell


@dataclass(frozen=True)
class Heatmap:
    panels: tuple[Panel, ...]
    """The panels drawn (at most ``MAX_PANELS``)."""
    truncated: bool
    low_ms: float
    """The colour scale, shared by every panel."""
    high_ms: float
    rows: pd.DataFrame


def _cell(row: dict[str, object]) -> Cell:
    return Cell(
        cell_text(row["alpha"], row["resolution"]),  # type: ignore[arg-type]
        float(row["p50_ms"]),  # type: ignore[arg-type]
        as_float(row["macs"]),
    )


def heatmap_data(results: pd.DataFrame, labels: dict[int, str]) -> Heatmap | Missing:
    """The panels of the heatmap from the result rows (or why there are none)."""
    frame = measured(results)
    grid = frame[frame["alpha"].notna() & frame["resolution"].notna()]
    if grid.empty:
        return NO_GRID
    group_cols = ["run_id", "variant", "precision", "kernel", "threads"]
    groups = [(key, part) for key, part in grid.groupby(group_cols, dropna=False, sort=True)]
    values = grid["p50_ms"].to_numpy(dtype=float)
    rows: list[dict[str, object]] = []
    panels: list[Panel] = []
    for key, part in groups[:MAX_PANELS]:
        run_id, variant, precision, kernel, threads = key
        alphas = sorted({float(a) for a in part["alpha"]}, reverse=True)
        resolutions = sorted({int(r) for r in part["resolution"]})
        matrix = np.full((len(alphas), len(resolutions)), np.nan)
        for row in map(Row, part.to_dict("records")):
            matrix[alphas.index(float(row.alpha)), resolutions.index(int(row.resolution))] = float(
                row.p50_ms
            )
            rows.append(
                {
                    "run_id": int(run_id),
                    "series": labels.get(int(run_id), ""),
                    "variant": variant,
                    "precision": precision,
                    "kernel": kernel,
                    "threads": threads,
                    "alpha": float(row.alpha),
                    "resolution": int(row.resolution),
                    "p50_ms": float(row.p50_ms),
                    "ci_low_ms": float(row.ci_low_ms),
                    "ci_high_ms": float(row.ci_high_ms),
                }
            )
        panels.append(
            Panel(
                series=labels.get(int(run_id), f"run {run_id}"),
                config=config_text(
                    str(variant), str(precision), as_float(kernel), as_float(threads)
                ),
                alphas=tuple(alphas),
                resolutions=tuple(resolutions),
                p50_ms=tuple(tuple(float(v) for v in line) for line in matrix),
                fastest=_cell(row_at(part, "p50_ms", largest=False)),
                slowest=_cell(row_at(part, "p50_ms", largest=True)),
            )
        )
    return Heatmap(
        panels=tuple(panels),
        truncated=len(groups) > MAX_PANELS,
        low_ms=float(values.min()),
        high_ms=float(values.max()),
        rows=pd.DataFrame(rows),
    )


def draw_heatmap(data: Heatmap) -> Figure:
    vmin, vmax = data.low_ms, data.high_ms
    norm: Normalize = (
        LogNorm(vmin=vmin, vmax=vmax)
        if vmax > vmin * 1.0001
        else Normalize(vmin=vmin * 0.9, vmax=vmax * 1.1)
    )
    ncols = min(len(data.panels), 2)
    nrows = math.ceil(len(data.panels) / ncols)
    fig = Figure(figsize=(5.6 * ncols + 0.9, 4.3 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for index, panel in enumerate(data.panels):
        ax: Axes = axes[index // ncols][index % ncols]
        matrix = np.array(panel.p50_ms, dtype=float)
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", norm=norm, aspect="auto")
        for i in range(len(panel.alphas)):
            for j in range(len(panel.resolutions)):
                value = matrix[i, j]
                if math.isnan(value):
                    ax.text(j, i, "–", ha="center", va="center", color="#555555")
                    continue
                shade = norm(value)
                ax.text(
                    j,
                    i,
                    f"{value:.3g}",
                    ha="center",
                    va="center",
                    fontsize=10,
                    fontweight="bold",
                    color="black" if float(shade) > 0.55 else "white",
                )
        ax.set_xticks(range(len(panel.resolutions)), [str(r) for r in panel.resolutions])
        ax.set_yticks(range(len(panel.alphas)), [alpha_text(a) for a in panel.alphas])
        ax.set_xlabel("input resolution (pixels)")
        ax.set_ylabel("width multiplier α")
        ax.set_title(f"{panel.series}\n{panel.config}", fontsize=10)
    for index in range(len(data.panels), nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    if image is not None:
        fig.colorbar(
            image, ax=axes.ravel().tolist(), label="median latency (ms, log colour)", shrink=0.9
        )
    fig.suptitle("Median latency per α × resolution (ms)", fontsize=12)
    return fig


def panel_sentence(panel: Panel) -> str:
    """'series (config): 0.5 ms at 0.25/128 to 9 ms at 1.0/224 (18×  for 20× the MACs)'."""
    fastest, slowest = panel.fastest, panel.slowest
    sentence = (
        f"{panel.series} ({panel.config}): "
        f"{fastest.p50_ms:.3g} ms at {fastest.cell} to "
        f"{slowest.p50_ms:.3g} ms at {slowest.cell} ({slowest.p50_ms / fastest.p50_ms:.1f}×"
    )
    if fastest.macs > 0 and slowest.macs > 0:
        sentence += f" for {slowest.macs / fastest.macs:.1f}× the MACs"
    return sentence + ")"


def heatmap_reading(data: Heatmap) -> str:
    reading = (
        "Each cell is the median latency over trials; darker is faster, one colour "
        "scale across panels. Median latency runs from "
        + join([panel_sentence(p) for p in data.panels])
        + "."
    )
    if data.truncated:
        reading += f" Only the first {MAX_PANELS} panels are drawn; the CSV holds them all."
    return reading


def latency_heatmap(results: pd.DataFrame, labels: dict[int, str]) -> Chart:
    """Median latency over α × resolution, one panel per run and configuration."""
    return compose(
        NAME, TITLE, heatmap_data(results, labels), draw_heatmap, heatmap_reading, svg=False
    )
