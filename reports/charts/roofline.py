"""Chart 9: each probe layer's achieved GFLOP/s against its arithmetic intensity, under the
device's measured compute and bandwidth ceilings (Williams et al. 2009)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.charts.chart import Chart, Missing, as_float, compose, join
from reports.charts.layer_probes import LAYERS_HINT, NO_PROBES
from reports.charts.series import run_label
from reports.charts.style import colour, finish_axes

NAME = "roofline"
TITLE = "Roofline: achieved GFLOP/s vs arithmetic intensity per layer"
ROOFLINE_ROLES: dict[str, tuple[str, str]] = {
    "standard": ("s", "standard conv"),
    "depthwise": ("o", "depthwise part"),
    "pointwise": ("D", "pointwise part"),
}


@dataclass(frozen=True)
class RunRoof:
    name: str
    points: pd.DataFrame
    """role, intensity_flop_per_byte, gflop_s of each probe layer of the run."""
    peak_gflop_s: float
    bandwidth_gb_s: float

    @property
    def has_ceilings(self) -> bool:
        return self.peak_gflop_s > 0 and self.bandwidth_gb_s > 0


@dataclass(frozen=True)
class Roofline:
    runs: tuple[RunRoof, ...]
    x_low: float
    x_high: float
    rows: pd.DataFrame


def roofline_data(layers: pd.DataFrame | None, labels: dict[int, str]) -> Roofline | Missing:
    if layers is None or layers.empty:
        return NO_PROBES
    rows: list[dict[str, object]] = []
    for record in layers.to_dict("records"):
        for role in ROOFLINE_ROLES:
            gflops = as_float(record.get(f"{role}_gflop_s"))
            intensity = as_float(record.get(f"{role}_intensity"))
            if gflops > 0 and intensity > 0:
                rows.append(
                    {
                        "run_id": int(as_float(record["run_id"])),
                        "block": int(as_float(record["block"])),
                        "D_K": int(as_float(record["D_K"])),
                        "role": role,
                        "intensity_flop_per_byte": intensity,
                        "gflop_s": gflops,
                        "peak_gflop_s": as_float(record.get("peak_gflop_s")),
                        "bandwidth_gb_s": as_float(record.get("bandwidth_gb_s")),
                    }
                )
    data = pd.DataFrame(rows)
    if data.empty:
        return Missing("the layer probes have no times or no arithmetic intensity", LAYERS_HINT)
    runs: list[RunRoof] = []
    for run_id in sorted({int(r) for r in data["run_id"]}):
        part = data[data["run_id"] == run_id]
        runs.append(
            RunRoof(
                name=run_label(labels, run_id),
                points=part,
                peak_gflop_s=float(part["peak_gflop_s"].iloc[0]),
                bandwidth_gb_s=float(part["bandwidth_gb_s"].iloc[0]),
            )
        )
    return Roofline(
        runs=tuple(runs),
        x_low=float(data["intensity_flop_per_byte"].min()) / 2,
        x_high=float(data["intensity_flop_per_byte"].max()) * 2,
        rows=data,
    )


def draw_roofline(data: Roofline) -> Figure:
    fig = Figure(figsize=(8.5, 6.0), layout="constrained")
    ax = fig.subplots()
    x_line = np.geomspace(data.x_low, data.x_high, 100)
    for index, run in enumerate(data.runs):
        for role, (marker, role_text) in ROOFLINE_ROLES.items():
            sub = run.points[run.points["role"] == role]
            if not sub.empty:
                ax.scatter(
                    sub["intensity_flop_per_byte"],
                    sub["gflop_s"],
                    color=colour(index),
                    marker=marker,
                    s=36,
                    zorder=3,
                    edgecolors="white",
                    linewidths=0.5,
                    label=f"{role_text}: {run.name}",
                )
        if run.has_ceilings:
            peak, bandwidth = run.peak_gflop_s, run.bandwidth_gb_s
            ax.plot(
                x_line,
                np.minimum(peak, bandwidth * x_line),
                color=colour(index),
                linestyle="--",
                linewidth=1.2,
                label=f"ceilings: {peak:.0f} GFLOP/s, {bandwidth:.1f} GB/s ({run.name})",
            )
    finish_axes(
        ax,
        "arithmetic intensity (FLOP per byte of weights + input + output, log)",
        "achieved GFLOP/s (log scale)",
        "Roofline of the layer probes",
        legend="lower right",
        legend_size=7,
    )
    return fig


def run_sentences(run: RunRoof) -> list[str]:
    """Where the run's ridge point lies and how many depthwise layers are memory-bound."""
    if not run.has_ceilings:
        return [f"{run.name}: no measured ceilings (run without --no-limits)"]
    part = run.points
    ridge = run.peak_gflop_s / run.bandwidth_gb_s
    depthwise = part[part["role"] == "depthwise"]
    below = int((depthwise["intensity_flop_per_byte"] < ridge).sum())
    sentences = [
        f"{run.name}: ridge point at {ridge:.1f} FLOP/byte; {below} of "
        f"{len(depthwise)} depthwise layers lie left of it (memory-bound), at "
        f"{float(depthwise['gflop_s'].median()) if len(depthwise) else math.nan:.1f}"
        " GFLOP/s median"
    ]
    above = int((part["gflop_s"] > run.peak_gflop_s).sum())
    if above:
        sentences.append(
            f"{above} layers run above the measured GEMM peak: numpy's BLAS is "
            "slower than onnxruntime's kernels here, or the machine was busy "
            "during the microbenchmark"
        )
    return sentences


def roofline_reading(data: Roofline) -> str:
    sentences = [s for run in data.runs for s in run_sentences(run)]
    return (
        "Each layer probe's achieved FLOP rate (2 × MACs / median time) against its "
        "arithmetic intensity from the cost model, under the device's measured ceilings: "
        "peak GEMM throughput and copy bandwidth, attainable = min(peak, bandwidth × "
        "intensity) (Williams et al. 2009). " + join(sentences) + "."
    )


def roofline_chart(layers: pd.DataFrame | None, labels: dict[int, str]) -> Chart:
    """Each probe layer's achieved GFLOP/s against its arithmetic intensity, under the
    device's measured compute and bandwidth ceilings (Williams et al. 2009)."""
    return compose(
        NAME, TITLE, roofline_data(layers, labels), draw_roofline, roofline_reading, svg=True
    )
