"""Chart 6: each layer kind's share of the time beside its share of the MACs, from the
per-node profiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.charts.chart import Chart, Missing, compose, join
from reports.charts.style import colour

NAME = "time_share"
TITLE = "Time share vs MAC share by layer kind"
LAYER_KINDS: tuple[str, ...] = ("stem", "depthwise", "pointwise", "standard", "fc")
HINT = "mnbench run --profile"


@dataclass(frozen=True)
class RunShares:
    name: str
    time_share: tuple[float, ...]
    """Per kind of ``TimeShare.kinds``, in % (0 for a kind the run lacks)."""
    depthwise: tuple[float, float] | None
    """(time %, MAC %) of the depthwise layers, when the run has them."""


@dataclass(frozen=True)
class TimeShare:
    kinds: tuple[str, ...]
    mac_share: tuple[float, ...]
    """Per kind, in % (mean over runs)."""
    runs: tuple[RunShares, ...]
    rows: pd.DataFrame


def time_share_data(frame: pd.DataFrame | None, labels: dict[int, str]) -> TimeShare | Missing:
    """Shares per run and kind from ``run_id, kind, time_ms, macs`` rows (one per profiled
    node or pre-summed; kinds other than ``LAYER_KINDS`` are summed as 'other')."""
    if frame is None or frame.empty:
        return Missing("the selected runs hold no per-layer profiles", HINT)
    data = frame[["run_id", "kind", "time_ms", "macs"]].copy()
    data["kind"] = [k if k in LAYER_KINDS else "other" for k in data["kind"].astype(str)]
    # the store types these (time_ms float64, macs Int64): only a missing value is filled
    data["time_ms"] = data["time_ms"].fillna(0.0)
    data["macs"] = data["macs"].fillna(0)
    summed = data.groupby(["run_id", "kind"], as_index=False)[["time_ms", "macs"]].sum()
    totals = summed.groupby("run_id")[["time_ms", "macs"]].transform("sum")
    summed["time_share"] = summed["time_ms"] / totals["time_ms"].where(totals["time_ms"] > 0)
    summed["mac_share"] = summed["macs"] / totals["macs"].where(totals["macs"] > 0)
    if summed["time_share"].isna().all():
        return Missing("the per-layer profiles hold no time", HINT)
    kinds = [k for k in (*LAYER_KINDS, "other") if k in set(summed["kind"])]
    mac_share = summed.groupby("kind")["mac_share"].mean()
    runs: list[RunShares] = []
    for run_id in sorted({int(r) for r in summed["run_id"]}):
        part = summed[summed["run_id"] == run_id].set_index("kind")
        depthwise = None
        if "depthwise" in part.index:
            depthwise = (
                100 * float(part.at["depthwise", "time_share"]),
                100 * float(part.at["depthwise", "mac_share"]),
            )
        runs.append(
            RunShares(
                name=labels.get(run_id, f"run {run_id}"),
                time_share=tuple(100 * float(part["time_share"].get(k, 0.0)) for k in kinds),
                depthwise=depthwise,
            )
        )
    return TimeShare(
        kinds=tuple(kinds),
        mac_share=tuple(100 * float(mac_share.get(k, 0.0)) for k in kinds),
        runs=tuple(runs),
        rows=summed,
    )


def draw_time_share(data: TimeShare) -> Figure:
    n_bars = len(data.runs) + 1
    width = 0.8 / n_bars
    fig = Figure(figsize=(9.0, 5.2), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(data.kinds))
    bars = ax.bar(
        x - 0.4 + width / 2,
        list(data.mac_share),
        width,
        color="#999999",
        hatch="//",
        edgecolor="white",
        label="share of MACs",
    )
    ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    for index, run in enumerate(data.runs):
        bars = ax.bar(
            x - 0.4 + width * (index + 1.5),
            list(run.time_share),
            width,
            color=colour(index),
            label=f"share of time: {run.name}",
        )
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(x, list(data.kinds))
    ax.set_xlabel("layer kind")
    ax.set_ylabel("share (%)")
    ax.set_title("Where the time goes vs where the MACs are")
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def time_share_reading(data: TimeShare) -> str:
    sentences: list[str] = []
    for run in data.runs:
        if run.depthwise is not None:
            t, m = run.depthwise
            ratio = f" ({t / m:.1f}× its MAC share)" if m > 0 else ""
            sentences.append(
                f"{run.name}: depthwise layers take {t:.1f} % of the time for "
                f"{m:.1f} % of the MACs{ratio}"
            )
    return (
        "Per-layer profiles summed by layer kind: a bar taller than the grey MAC bar "
        "means that kind runs below the model's average MAC throughput. "
        + (join(sentences) + "." if sentences else "")
    )


def time_share_chart(frame: pd.DataFrame | None, labels: dict[int, str] | None = None) -> Chart:
    """Per-layer-kind share of time beside share of MACs.

    ``frame`` has one row per profiled node (or pre-summed per kind) with columns
    ``run_id, kind, time_ms, macs``; kind is one of stem, depthwise, pointwise, fc (others
    are summed as 'other').
    """
    return compose(
        NAME,
        TITLE,
        time_share_data(frame, labels or {}),
        draw_time_share,
        time_share_reading,
        svg=False,
    )
