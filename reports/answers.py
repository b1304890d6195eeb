"""The answers a report leads with, computed from the results and the charts' data.

Four findings, each a sentence for the report's summary and the first lines of the
markdown summary, and three of them the lines ``mnbench report`` prints last:

- **budget**: for a latency budget, the most accurate cell that fits (the Pareto frontier of
  the latency–accuracy chart, read as a table of budgets);
- **range**: the fastest and the slowest grid cell;
- **separable vs standard**: measured against predicted ratio, from the mission chart;
- **noise**: how far the fresh-process trials of one model spread, how wide the intervals
  of the medians are, and how many results are flagged unstable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.charts import Chart, cell_text, measured
from reports.charts.chart import as_float
from reports.mission import NAME as MISSION_NAME
from reports.mission import departures


@dataclass(frozen=True)
class BudgetPick:
    """Within ``budget_ms`` (and until the next pick's latency) the best cell is ``cell``."""

    series: str
    budget_ms: float
    cell: str
    top1: float


@dataclass(frozen=True)
class Answers:
    """The report's opening findings; an empty text means there was no data for it."""

    picks: tuple[BudgetPick, ...]
    latency_range: str
    fastest: str
    separable_standard: str
    noise: str

    def headline(self) -> list[str]:
        """The three lines printed at the end of ``mnbench report``."""
        return [
            f"fastest: {self.fastest or 'no grid cell measured'}",
            f"separable/standard: {self.separable_standard or 'not measured'}",
            f"stability: {self.noise or 'no measurement'}",
        ]


def _chart(charts: Sequence[Chart], name: str) -> Chart | None:
    return next((c for c in charts if c.name == name and c.has_image), None)


def budget_picks(charts: Sequence[Chart]) -> tuple[BudgetPick, ...]:
    """The Pareto frontier of the latency–accuracy chart as budgets, per series; only the
    series with the most cells (the grid runs, not a run of a few cells beside them)."""
    chart = _chart(charts, "latency_accuracy")
    if chart is None or "pareto" not in chart.data.columns:
        return ()
    sizes = chart.data.groupby("series", sort=False).size()
    full = set(sizes[sizes == sizes.max()].index)
    front = chart.data[chart.data["pareto"].astype(bool) & chart.data["series"].isin(full)]
    picks: list[BudgetPick] = []
    for series, part in front.groupby("series", sort=False):
        for row in part.sort_values("p50_ms").to_dict("records"):
            picks.append(
                BudgetPick(
                    series=str(series),
                    budget_ms=float(row["p50_ms"]),
                    cell=cell_text(float(row["alpha"]), float(row["resolution"])),
                    top1=float(row["top1"]),
                )
            )
    return tuple(picks)


def _grid(results: pd.DataFrame) -> pd.DataFrame:
    frame = measured(results)
    grid: pd.DataFrame = frame[
        frame["alpha"].notna() & frame["resolution"].notna() & (frame["variant"] == "separable")
    ]
    return grid


def _range(results: pd.DataFrame) -> tuple[str, str]:
    """(sentence on the latency range, the fastest cell's short line) of the run with the
    most separable grid cells."""
    grid = _grid(results)
    if grid.empty:
        return "", ""
    main_run = int(as_float(grid["run_id"].value_counts().sort_index(ascending=False).idxmax()))
    part = grid[grid["run_id"] == main_run]
    fast = part.loc[part["p50_ms"].idxmin()]
    slow = part.loc[part["p50_ms"].idxmax()]
    fast_cell = cell_text(float(fast["alpha"]), float(fast["resolution"]))
    slow_cell = cell_text(float(slow["alpha"]), float(slow["resolution"]))
    spread = float(slow["p50_ms"]) / float(fast["p50_ms"])
    where = str(fast.get("device") or "the device")
    sentence = (
        f"Median latency of the {len(part)} separable cells of run #{main_run} on "
        f"{where}: from {float(fast['p50_ms']):.3g} ms ({fast_cell}) to "
        f"{float(slow['p50_ms']):.3g} ms ({slow_cell}), {spread:.0f}× apart."
    )
    short = (
        f"{fast_cell} at {float(fast['p50_ms']):.3g} ms on {where} (slowest {slow_cell} at "
        f"{float(slow['p50_ms']):.3g} ms, {spread:.0f}×)"
    )
    return sentence, short


def _separable_standard(charts: Sequence[Chart]) -> str:
    chart = _chart(charts, MISSION_NAME)
    if chart is None:
        return ""
    points = chart.data
    latency = points[points["series"] == "latency"]
    parts: list[str] = []
    models = latency[latency["level"] == "model"]
    if not models.empty:
        measured_ratio = float(models["ratio"].median())
        predicted = float(models["predicted_ratio"].median())
        parts.append(
            f"whole models take {measured_ratio:.2f}× the time of the standard variant where "
            f"1/N + 1/D_K² predicts {predicted:.2f}× ({measured_ratio / predicted:.1f}× the "
            f"prediction, median of {len(models)} cells)"
        )
    blocks = [d for d in departures(latency) if d.level == "block"]
    if blocks:
        found = blocks[0]
        parts.append(
            f"per block the measured ratio is above the prediction in {found.above} of "
            f"{found.count} blocks, median {found.median_factor:.1f}× the prediction"
        )
    return "; ".join(parts)


def _noise(results: pd.DataFrame) -> str:
    frame = measured(results)
    if frame.empty:
        return ""
    spreads: list[tuple[float, str]] = []
    for row in frame.to_dict("records"):
        medians = row.get("trial_medians_ms")
        if isinstance(medians, (list, tuple)) and len(medians) >= 2:
            values = np.asarray([float(v) for v in medians if v is not None], dtype=float)
            values = values[np.isfinite(values) & (values > 0)]
            if len(values) >= 2:
                spreads.append((float(values.max() / values.min() - 1.0), str(row["name"])))
    half = ((frame["ci_high_ms"] - frame["ci_low_ms"]) / 2 / frame["p50_ms"]).dropna()
    flagged = int((frame["flags"] != "").sum())
    parts: list[str] = []
    if spreads:
        values = np.asarray([s for s, _ in spreads])
        worst, worst_name = max(spreads)
        parts.append(
            "the fresh-process trials of one model differ by a median "
            f"{100 * np.median(values):.0f} % (slowest over fastest trial; worst "
            f"{100 * worst:.0f} %, {worst_name})"
        )
    if len(half):
        parts.append(f"95 % CI of the medians ±{100 * float(half.median()):.1f} % (median)")
    parts.append(f"{flagged} of {len(frame)} results flagged unreliable")
    return "; ".join(parts)


def report_answers(results: pd.DataFrame, charts: Sequence[Chart]) -> Answers:
    """The findings for these results and the charts drawn from them."""
    sentence, short = _range(results)
    return Answers(
        picks=budget_picks(charts),
        latency_range=sentence,
        fastest=short,
        separable_standard=_separable_standard(charts),
        noise=_noise(results),
    )


def budget_text(pick: BudgetPick, following: BudgetPick | None) -> str:
    """'≥ 3.1 ms (to 5.2): 0.5/224, 63.3 % top-1' for one row of the budget table."""
    until = f" to {following.budget_ms:.3g}" if following is not None else ""
    return f"≥ {pick.budget_ms:.3g}{until} ms: {pick.cell} ({pick.top1:.1f} % top-1)"


def picks_by_series(picks: Sequence[BudgetPick]) -> dict[str, list[BudgetPick]]:
    grouped: dict[str, list[BudgetPick]] = {}
    for pick in picks:
        grouped.setdefault(pick.series, []).append(pick)
    return grouped
